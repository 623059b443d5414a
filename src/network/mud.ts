import { MoatError } from "../errors.js";
import { parseCidr, formatCidr } from "./address.js";
import type { PortRange, Proto } from "./services.js";

/** Largest MUD file read; real profiles are a few kilobytes (RFC 8520 §1.8). */
export const MAX_MUD_BYTES = 1024 * 1024;

/** A rule in the policy's structured form, produced from one MUD access-control entry. */
export interface MudRule {
  readonly action: "allow" | "deny";
  readonly proto: Proto;
  readonly ports: readonly PortRange[] | null;
  readonly from: string | null;
  readonly to: string | null;
  /** `mud ACL/ACE`, kept in the policy so each rule can be traced to its source. */
  readonly comment: string;
}

/** An entry that was not turned into a rule: skipped entries make the result stricter, never looser. */
export interface MudNote {
  readonly path: string;
  readonly message: string;
}

export interface MudImport {
  readonly group: string;
  readonly mudUrl: string;
  readonly systeminfo: string | null;
  readonly rules: readonly MudRule[];
  /** Entries skipped because Moat cannot express them (the flows they allow stay denied). */
  readonly warnings: readonly MudNote[];
  /** Entries not needed (replies, handled by connection tracking). */
  readonly notes: readonly MudNote[];
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const MUD = "ietf-mud:mud";
const ACLS = "ietf-access-control-list:acls";
const DNS_NAME = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9]$/;

/** JSONPath-like location: `$["ietf-mud:mud"]["from-device-policy"]`, `.acl[0]`. */
function at(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function invalid(path: string, message: string): never {
  throw new MoatError("NETWORK_MUD_INVALID", `${path}: ${message}`, { detail: { path } });
}

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function object(value: Json | undefined, path: string): JsonObject {
  if (!isObject(value)) invalid(path, "must be an object");
  return value;
}

function array(value: Json | undefined, path: string): Json[] {
  if (!Array.isArray(value)) invalid(path, "must be a list");
  return value;
}

function string(value: Json | undefined, path: string): string {
  if (typeof value !== "string" || value === "") invalid(path, "must be a non-empty string");
  return value;
}

/** YANG identityref values may carry their module prefix (`ietf-access-control-list:accept`). */
function identity(value: Json | undefined, path: string): string {
  const text = string(value, path);
  return text.includes(":") ? text.slice(text.lastIndexOf(":") + 1) : text;
}

function portNumber(value: Json | undefined, path: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 65535) invalid(path, "must be a port number 0-65535");
  return value;
}

/** RFC 8519 §4.1 port-range-or-operator: `{operator, port}` or `{lower-port, upper-port}`. */
function readPorts(value: Json | undefined, path: string): PortRange[] {
  const spec = object(value, path);
  if ("lower-port" in spec || "upper-port" in spec) {
    const from = portNumber(spec["lower-port"], at(path, "lower-port"));
    const to = portNumber(spec["upper-port"], at(path, "upper-port"));
    if (to < from) invalid(at(path, "upper-port"), `is below lower-port ${from}`);
    return [{ from: Math.max(from, 1), to }];
  }
  const port = portNumber(spec.port, at(path, "port"));
  const operator = spec.operator === undefined ? "eq" : identity(spec.operator, at(path, "operator"));
  switch (operator) {
    case "eq":
      if (port === 0) invalid(at(path, "port"), "port 0 cannot be matched");
      return [{ from: port, to: port }];
    case "lte":
      return [{ from: 1, to: port }];
    case "gte":
      return [{ from: Math.max(port, 1), to: 65535 }];
    case "neq":
      return [
        ...(port > 1 ? [{ from: 1, to: port - 1 }] : []),
        ...(port < 65535 ? [{ from: port + 1, to: 65535 }] : []),
      ];
    default:
      return invalid(at(path, "operator"), `unknown operator "${operator}" (eq, lte, gte, neq)`);
  }
}

interface AceContext {
  readonly direction: "from-device" | "to-device";
  readonly aclName: string;
  readonly warnings: MudNote[];
  readonly notes: MudNote[];
}

/** The remote end named by an ACE, as a policy peer, or a reason it cannot be expressed. */
function readPeer(matches: JsonObject, path: string, ctx: AceContext): { peer: string | null } | { skip: string } {
  const remote = ctx.direction === "from-device" ? "dst" : "src";
  const local = ctx.direction === "from-device" ? "src" : "dst";
  const peers: string[] = [];
  const ipv4 = matches.ipv4 === undefined ? undefined : object(matches.ipv4, at(path, "ipv4"));
  if (ipv4) {
    const ipPath = at(path, "ipv4");
    for (const key of Object.keys(ipv4)) {
      const keyPath = at(ipPath, key);
      if (key === "protocol") continue;
      if (key === `ietf-acldns:${remote}-dnsname`) {
        const name = string(ipv4[key], keyPath);
        if (!DNS_NAME.test(name)) invalid(keyPath, `"${name}" is not a DNS name`);
        peers.push(name.toLowerCase());
      } else if (key === `${remote === "dst" ? "destination" : "source"}-ipv4-network`) {
        const parsed = parseCidr(string(ipv4[key], keyPath));
        if (!parsed.ok) invalid(keyPath, parsed.reason);
        peers.push(formatCidr(parsed.cidr));
      } else if (key === `ietf-acldns:${local}-dnsname` || key === `${local === "dst" ? "destination" : "source"}-ipv4-network`)
        return { skip: `${key} names the device's own address; Moat places the device by its VLAN instead` };
      else return { skip: `the match "${key}" cannot be expressed by the segmentation policy` };
    }
  }
  if (matches[MUD] !== undefined) {
    const mudPath = at(path, MUD);
    const mud = object(matches[MUD], mudPath);
    for (const key of Object.keys(mud)) {
      // RFC 8520 §4: abstractions resolved by the local network; two map to policy networks by convention.
      if (key === "local-networks") peers.push("mud-local-networks");
      else if (key === "my-controller") peers.push("mud-my-controller");
      else if (["controller", "manufacturer", "same-manufacturer", "model"].includes(key))
        return { skip: `the MUD abstraction "${key}" needs a device or controller registry Moat does not keep` };
      else invalid(at(mudPath, key), `unknown MUD match "${key}"`);
    }
  }
  if (peers.length > 1) return { skip: `the entry names more than one remote end (${peers.join(", ")})` };
  return { peer: peers[0] ?? null };
}

function readAce(ace: JsonObject, path: string, ctx: AceContext): MudRule | null {
  const aceName = string(ace.name, at(path, "name"));
  const matchesPath = at(path, "matches");
  const matches = ace.matches === undefined ? {} : object(ace.matches, matchesPath);
  const actions = object(ace.actions, at(path, "actions"));
  const forwarding = identity(actions.forwarding, at(at(path, "actions"), "forwarding"));
  if (!["accept", "drop", "reject"].includes(forwarding)) invalid(at(at(path, "actions"), "forwarding"), `must be accept, drop or reject`);
  for (const key of Object.keys(matches))
    if (!["ipv4", "tcp", "udp", MUD, "ipv6", "icmp", "eth", "l2-3-4"].includes(key)) invalid(at(matchesPath, key), `unknown match "${key}"`);
  const skip = (message: string): null => {
    ctx.warnings.push({ path, message: `${message}; entry ${ctx.aclName}/${aceName} skipped (its flows stay denied)` });
    return null;
  };
  for (const key of ["ipv6", "icmp", "eth", "l2-3-4"]) if (matches[key] !== undefined) return skip(`the "${key}" match is not supported (IPv4 TCP/UDP only)`);
  if (matches.tcp !== undefined && matches.udp !== undefined) invalid(matchesPath, `has both "tcp" and "udp"`);
  const ipv4 = matches.ipv4 === undefined ? undefined : object(matches.ipv4, at(matchesPath, "ipv4"));
  let proto: Proto = matches.tcp !== undefined ? "tcp" : matches.udp !== undefined ? "udp" : "any";
  if (ipv4?.protocol !== undefined) {
    const protoPath = at(at(matchesPath, "ipv4"), "protocol");
    const number = ipv4.protocol;
    if (typeof number !== "number" || !Number.isInteger(number) || number < 0 || number > 255) invalid(protoPath, "must be an IP protocol number 0-255");
    const named = number === 6 ? "tcp" : number === 17 ? "udp" : null;
    if (named === null) return skip(`IP protocol ${number} is not supported (only 6 = TCP and 17 = UDP)`);
    if (proto !== "any" && proto !== named) invalid(protoPath, `is ${number} (${named}) but the entry matches ${proto}`);
    proto = named;
  }
  let ports: PortRange[] | null = null;
  if (proto !== "any" && matches[proto] !== undefined) {
    const l4Path = at(matchesPath, proto);
    const l4 = object(matches[proto], l4Path);
    for (const key of Object.keys(l4)) {
      if (key === "ietf-mud:direction-initiated") {
        const initiated = identity(l4[key], at(l4Path, key));
        if (initiated !== "from-device" && initiated !== "to-device") invalid(at(l4Path, key), `must be from-device or to-device`);
        if (proto !== "tcp") invalid(at(l4Path, key), `applies to TCP only (RFC 8520 §6)`);
        // Replies to a connection the other side opened are allowed by connection tracking.
        if (initiated !== ctx.direction) {
          ctx.notes.push({ path, message: `entry ${ctx.aclName}/${aceName} matches replies to connections opened ${initiated}; allowed by connection tracking` });
          return null;
        }
      } else if (key === "destination-port") ports = readPorts(l4[key], at(l4Path, key));
      else if (key === "source-port") return skip(`a source-port match cannot be expressed (rules match the service's destination port)`);
      else return skip(`the ${proto} match "${key}" is not supported`);
    }
  }
  const peer = readPeer(matches, matchesPath, ctx);
  if ("skip" in peer) return skip(peer.skip);
  if (ports !== null && ports.length === 0) return skip("the port match excludes every port");
  const action = forwarding === "accept" ? "allow" : "deny";
  const direction = ctx.direction;
  return {
    action,
    proto,
    ports,
    // An egress rule names where the device connects to; an ingress rule who may connect to it.
    from: direction === "to-device" ? (peer.peer ?? "any") : null,
    to: direction === "from-device" ? peer.peer : null,
    comment: `mud ${ctx.aclName}/${aceName}`,
  };
}

/**
 * Reads an RFC 8520 MUD file and turns its from-device and to-device access lists into policy rules
 * for the VLAN holding the group's devices. Malformed input throws NETWORK_MUD_INVALID naming the JSON
 * path; entries Moat cannot express are skipped with a warning (the result is stricter, never looser).
 */
export function importMud(text: string, group: string): MudImport {
  if (Buffer.byteLength(text, "utf8") > MAX_MUD_BYTES) invalid("$", `the file is larger than ${MAX_MUD_BYTES} bytes`);
  let root: Json;
  try {
    root = JSON.parse(text) as Json;
  } catch (cause) {
    throw new MoatError("NETWORK_MUD_INVALID", `$: not valid JSON (${(cause as Error).message})`, { detail: { path: "$" } });
  }
  const top = object(root, "$");
  const mudPath = at("$", MUD);
  const mud = object(top[MUD], mudPath);
  if (mud["mud-version"] !== 1) invalid(at(mudPath, "mud-version"), "must be 1 (RFC 8520 §2.1)");
  const mudUrl = string(mud["mud-url"], at(mudPath, "mud-url"));
  if (!mudUrl.startsWith("https://")) invalid(at(mudPath, "mud-url"), "must be an https URL (RFC 8520 §3.3)");
  string(mud["last-update"], at(mudPath, "last-update"));
  if (typeof mud["is-supported"] !== "boolean") invalid(at(mudPath, "is-supported"), "must be true or false");
  const systeminfo = mud.systeminfo === undefined ? null : string(mud.systeminfo, at(mudPath, "systeminfo"));

  const aclsPath = at("$", ACLS);
  const aclList = top[ACLS] === undefined ? [] : array(object(top[ACLS], aclsPath).acl, at(aclsPath, "acl"));
  const acls = new Map<string, { acl: JsonObject; path: string }>();
  aclList.forEach((entry, i) => {
    const path = at(at(aclsPath, "acl"), i);
    const acl = object(entry, path);
    const name = string(acl.name, at(path, "name"));
    if (acls.has(name)) invalid(at(path, "name"), `duplicate ACL name "${name}"`);
    acls.set(name, { acl, path });
  });

  const warnings: MudNote[] = [];
  const notes: MudNote[] = [];
  const rules: MudRule[] = [];
  for (const direction of ["from-device", "to-device"] as const) {
    const policyPath = at(mudPath, `${direction}-policy`);
    if (mud[`${direction}-policy`] === undefined) continue;
    const listsPath = at(policyPath, "access-lists");
    const refs = array(object(object(mud[`${direction}-policy`], policyPath)["access-lists"], listsPath)["access-list"], at(listsPath, "access-list"));
    refs.forEach((ref, i) => {
      const refPath = at(at(listsPath, "access-list"), i);
      const aclName = string(object(ref, refPath).name, at(refPath, "name"));
      const found = acls.get(aclName);
      if (!found) invalid(at(refPath, "name"), `names ACL "${aclName}", which is not in ${ACLS}`);
      const type = found.acl.type === undefined ? "ipv4-acl-type" : identity(found.acl.type, at(found.path, "type"));
      if (type !== "ipv4-acl-type") {
        warnings.push({ path: at(found.path, "type"), message: `ACL ${aclName} is of type ${type}; only ipv4-acl-type is supported, so it was skipped` });
        return;
      }
      const acesPath = at(at(found.path, "aces"), "ace");
      const aces = array(object(found.acl.aces, at(found.path, "aces")).ace, acesPath);
      aces.forEach((entry, j) => {
        const rule = readAce(object(entry, at(acesPath, j)), at(acesPath, j), { direction, aclName, warnings, notes });
        if (rule) rules.push(rule);
      });
    });
  }
  const egressOpen = rules.some((r) => r.action === "allow" && r.from === null && r.to === null && r.ports === null && r.proto === "any");
  if (!egressOpen) rules.push({ action: "deny", proto: "any", ports: null, from: null, to: null, comment: "MUD: anything not allowed is denied" });
  return { group, mudUrl, systeminfo, rules, warnings, notes };
}
