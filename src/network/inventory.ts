import { MoatError } from "../errors.js";
import { cidrContainsAddress, formatCidr, parseIpv4 } from "./address.js";
import type { ResolvedPolicy, ResolvedVlan } from "./policy-model.js";

/** The device attribute that places a device in a VLAN (its id or its name). */
export const VLAN_ATTRIBUTE = "vlan";

/** What the placement check needs of a device: the inventory's id, attributes and last-seen address. */
export interface InventoryDevice {
  readonly id: string;
  readonly attributes: Readonly<Record<string, unknown>>;
  /** Address the broker last saw the device connect from, or null. */
  readonly lastSeenAddress: string | null;
}

export type PlacementStatus =
  /** The last-seen address lies in the device's VLAN. */
  | "ok"
  /** The device's `vlan` attribute names a VLAN, but its last-seen address lies outside that subnet. */
  | "outside-subnet"
  /** The `vlan` attribute names no VLAN of the policy. */
  | "unknown-vlan"
  /** No `vlan` attribute and the last-seen address is in no VLAN. */
  | "unplaced"
  /** Placed by attribute, never seen: nothing to compare. */
  | "not-seen";

export interface DevicePlacement {
  readonly id: string;
  readonly vlan: { readonly id: number; readonly name: string; readonly subnet: string } | null;
  readonly placedBy: "attribute" | "address" | null;
  readonly lastSeenAddress: string | null;
  readonly status: PlacementStatus;
  /** True for statuses an operator must look at. */
  readonly flagged: boolean;
  readonly message: string;
}

function findVlan(policy: ResolvedPolicy, value: unknown): ResolvedVlan | null {
  const text = typeof value === "number" ? String(value) : typeof value === "string" ? value.trim() : null;
  if (text === null || text === "") return null;
  return policy.vlans.find((v) => v.name === text || String(v.id) === text) ?? null;
}

function summary(vlan: ResolvedVlan) {
  return { id: vlan.id, name: vlan.name, subnet: formatCidr(vlan.subnet) };
}

/**
 * Places each device in a VLAN, by its `vlan` attribute (id or name) or else by its last-seen address,
 * and flags devices whose last-seen address lies outside their VLAN's subnet (a device moved, spoofed
 * or mis-patched). Pure: the caller fetches the devices.
 */
export function checkDevicePlacement(policy: ResolvedPolicy, devices: readonly InventoryDevice[]): DevicePlacement[] {
  return devices.map((device) => {
    const seenText = device.lastSeenAddress?.trim() || null;
    // Node reports IPv4 peers of a dual-stack listener as IPv4-mapped IPv6 (RFC 4291 §2.5.5.2).
    const seen = seenText === null ? null : parseIpv4(seenText.replace(/^::ffff:/i, ""));
    const attribute = device.attributes[VLAN_ATTRIBUTE];
    const base = { id: device.id, lastSeenAddress: seenText };
    if (attribute !== undefined && attribute !== null && attribute !== "") {
      const vlan = findVlan(policy, attribute);
      if (!vlan)
        return { ...base, vlan: null, placedBy: "attribute", status: "unknown-vlan", flagged: true, message: `attribute vlan=${String(attribute)} names no VLAN in the policy` };
      if (seenText === null)
        return { ...base, vlan: summary(vlan), placedBy: "attribute", status: "not-seen", flagged: false, message: `in VLAN ${vlan.name}; no address seen yet` };
      if (seen === null || !cidrContainsAddress(vlan.subnet, seen))
        return {
          ...base, vlan: summary(vlan), placedBy: "attribute", status: "outside-subnet", flagged: true,
          message: `last seen at ${seenText}, outside VLAN ${vlan.name} (${formatCidr(vlan.subnet)})`,
        };
      return { ...base, vlan: summary(vlan), placedBy: "attribute", status: "ok", flagged: false, message: `in VLAN ${vlan.name}` };
    }
    const byAddress = seen === null ? undefined : policy.vlans.find((v) => cidrContainsAddress(v.subnet, seen));
    if (byAddress)
      return { ...base, vlan: summary(byAddress), placedBy: "address", status: "ok", flagged: false, message: `in VLAN ${byAddress.name} by address` };
    return {
      ...base, vlan: null, placedBy: null, status: "unplaced", flagged: true,
      message: seenText === null ? "no vlan attribute and never seen" : `no vlan attribute and ${seenText} is in no VLAN`,
    };
  });
}

/** Reads an inventory exported as JSON: a list of `{id, attributes, lastSeenAddress}` (NETWORK_INVENTORY_INVALID otherwise). */
export function parseInventoryJson(text: string): InventoryDevice[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new MoatError("NETWORK_INVENTORY_INVALID", `the inventory is not valid JSON (${(cause as Error).message})`);
  }
  const list = Array.isArray(value) ? value : (value as { devices?: unknown } | null)?.devices;
  if (!Array.isArray(list)) throw new MoatError("NETWORK_INVENTORY_INVALID", `the inventory must be a JSON list of devices (or {"devices": [...]})`);
  return list.map((entry, i) => {
    const e = entry as Record<string, unknown> | null;
    if (typeof e !== "object" || e === null || typeof e.id !== "string" || e.id === "")
      throw new MoatError("NETWORK_INVENTORY_INVALID", `device [${i}] needs a string "id"`);
    const attributes = e.attributes ?? {};
    if (typeof attributes !== "object" || attributes === null || Array.isArray(attributes))
      throw new MoatError("NETWORK_INVENTORY_INVALID", `device [${i}] (${e.id}): "attributes" must be an object`);
    const seen = e.lastSeenAddress ?? null;
    if (seen !== null && typeof seen !== "string")
      throw new MoatError("NETWORK_INVENTORY_INVALID", `device [${i}] (${e.id}): "lastSeenAddress" must be a string or null`);
    return { id: e.id, attributes: attributes as Record<string, unknown>, lastSeenAddress: seen };
  });
}
