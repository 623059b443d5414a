/**
 * Per-group settings: the source networks a group's devices connect from, the silence window after
 * which a device counts as missing, and the lowest firmware security version the group should run.
 * A group is still only a name on devices; these settings attach to that name and may be set before
 * any device joins. Detection and posture read them; an unset setting turns the checks that need it
 * off for the group (docs/detect.md).
 */
import { MoatError } from "../errors.js";
import { parseDuration } from "../lib/duration.js";
import { formatCidr, parseCidr, parseIp } from "../lib/ip-address.js";
import { assertGroupName } from "./group-name.js";
import type { GroupSettingsRecord, IdentityStore } from "./ports.js";

/** More networks than this is a list of hosts, not a group's networks; it also bounds the record. */
export const MAX_ALLOWED_CIDRS = 64;
/** Security versions are anti-rollback counters; a minimum beyond 32 bits is a typo, not a policy. */
export const MAX_MIN_SECURITY_VERSION = 0xffff_ffff;

/** The settings that can be given; `undefined` keeps a setting, `null` clears it. */
export interface GroupSettingsPatch {
  allowedCidrs?: readonly string[] | null;
  silenceWindow?: string | null;
  minSecurityVersion?: number | null;
}

export type GroupSettingName = keyof GroupSettingsPatch;

/** A group with its settings as the CLI and the API show it. */
export interface GroupSettingsView {
  group: string;
  allowedCidrs: string[] | null;
  silenceWindow: string | null;
  /** The silence window in milliseconds (null when not configured). */
  silenceWindowMs: number | null;
  minSecurityVersion: number | null;
  /** Devices that carry the group name now. */
  devices: number;
  /** Null when the group's settings were never set. */
  updatedAt: string | null;
  updatedBy: string | null;
}

/** Reads one CIDR block; host bits set are refused because they usually hide a typo. */
export function canonicalCidr(text: unknown): string {
  const block = typeof text === "string" && text.length <= 64 ? parseCidr(text.trim()) : null;
  if (!block) throw new MoatError("VALIDATION_FAILED", `allowed CIDR ${JSON.stringify(text)} is not an IPv4 or IPv6 network like 10.20.0.0/16 or 2001:db8::/64`);
  const trimmed = (text as string).trim();
  const address = parseIp(trimmed.split("/")[0]!);
  if (address && address.value !== block.base && address.family === block.family)
    throw new MoatError("VALIDATION_FAILED", `allowed CIDR ${JSON.stringify(text)} has host bits set; the network is ${formatCidr(block)}`);
  return formatCidr(block);
}

function checkCidrs(list: unknown): string[] {
  if (!Array.isArray(list)) throw new MoatError("VALIDATION_FAILED", "allowedCidrs must be a list of networks");
  // An empty list would make every connection unexpected; clearing the setting is what was meant.
  if (list.length === 0) throw new MoatError("VALIDATION_FAILED", "allowedCidrs needs at least one network (clear the setting to turn the check off)");
  if (list.length > MAX_ALLOWED_CIDRS) throw new MoatError("VALIDATION_FAILED", `at most ${MAX_ALLOWED_CIDRS} allowed CIDRs per group`);
  return [...new Set(list.map(canonicalCidr))];
}

function checkSilenceWindow(text: unknown): string {
  if (typeof text !== "string") throw new MoatError("DURATION_INVALID", "silenceWindow must be a duration like 15m or 1h");
  parseDuration(text, "silence window");
  return text.trim();
}

function checkSecurityVersion(value: unknown): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > MAX_MIN_SECURITY_VERSION)
    throw new MoatError("VALIDATION_FAILED", `minSecurityVersion ${JSON.stringify(value)} is not an integer from 0 to ${MAX_MIN_SECURITY_VERSION}`);
  return value;
}

function viewOf(group: string, record: GroupSettingsRecord | undefined, devices: number): GroupSettingsView {
  const silenceWindow = record?.silenceWindow ?? null;
  return {
    group,
    allowedCidrs: record?.allowedCidrs ?? null,
    silenceWindow,
    silenceWindowMs: silenceWindow === null ? null : parseDuration(silenceWindow),
    minSecurityVersion: record?.minSecurityVersion ?? null,
    devices,
    updatedAt: record?.updatedAt ?? null,
    updatedBy: record?.updatedBy ?? null,
  };
}

/** Group settings: read, list, and change with an audit event and a change-feed row in one transaction. */
export class GroupSettingsService {
  constructor(private readonly store: IdentityStore) {}

  /** A group's settings; a group never configured (or with no device yet) answers with every setting null. */
  async get(group: string): Promise<GroupSettingsView> {
    assertGroupName(group);
    const [record, counts] = await Promise.all([this.store.groups.get(group), this.store.groups.deviceCounts()]);
    return viewOf(group, record, counts.get(group) ?? 0);
  }

  /** Every group that has settings or devices, by name. */
  async list(): Promise<GroupSettingsView[]> {
    const [records, counts] = await Promise.all([this.store.groups.list(), this.store.groups.deviceCounts()]);
    const byName = new Map(records.map((r) => [r.group, r]));
    const names = [...new Set([...byName.keys(), ...counts.keys()])].sort();
    return names.map((name) => viewOf(name, byName.get(name), counts.get(name) ?? 0));
  }

  /** The stored settings of every configured group (for services that keep them in memory). */
  configured(): Promise<GroupSettingsRecord[]> {
    return this.store.groups.list();
  }

  /**
   * Changes the given settings (null clears one, an absent one stays). A patch that changes nothing
   * writes nothing. Throws VALIDATION_FAILED or DURATION_INVALID before anything is written.
   */
  async set(group: string, patch: GroupSettingsPatch, actor: string): Promise<GroupSettingsView> {
    assertGroupName(group);
    const next: Partial<Record<GroupSettingName, unknown>> = {};
    if (patch.allowedCidrs !== undefined) next.allowedCidrs = patch.allowedCidrs === null ? null : checkCidrs(patch.allowedCidrs);
    if (patch.silenceWindow !== undefined) next.silenceWindow = patch.silenceWindow === null ? null : checkSilenceWindow(patch.silenceWindow);
    if (patch.minSecurityVersion !== undefined) next.minSecurityVersion = patch.minSecurityVersion === null ? null : checkSecurityVersion(patch.minSecurityVersion);
    await this.store.transact(async (uow) => {
      const current = await uow.groups.get(group, { forUpdate: true });
      const before: Record<GroupSettingName, unknown> = {
        allowedCidrs: current?.allowedCidrs ?? null,
        silenceWindow: current?.silenceWindow ?? null,
        minSecurityVersion: current?.minSecurityVersion ?? null,
      };
      const changes: Partial<Record<GroupSettingName, { from: unknown; to: unknown }>> = {};
      for (const [name, value] of Object.entries(next) as [GroupSettingName, unknown][])
        if (JSON.stringify(before[name]) !== JSON.stringify(value)) changes[name] = { from: before[name], to: value };
      const fields = Object.keys(changes) as GroupSettingName[];
      if (fields.length === 0) return;
      const after = { ...before, ...next };
      const record: GroupSettingsRecord = {
        group,
        allowedCidrs: after.allowedCidrs as string[] | null,
        silenceWindow: after.silenceWindow as string | null,
        minSecurityVersion: after.minSecurityVersion as number | null,
        updatedAt: new Date().toISOString(),
        updatedBy: actor,
      };
      // A group with nothing configured has no row: "not configured" has one representation.
      if (record.allowedCidrs === null && record.silenceWindow === null && record.minSecurityVersion === null) await uow.groups.delete(group);
      else await uow.groups.upsert(record);
      // These settings decide what detection treats as suspicious: a change stands out like a policy change.
      await uow.events.append({ type: "group.settings_changed", severity: "medium", actor, subject: group, data: { fields, changes } });
      await uow.changes.append({ kind: "group.settings", subject: group, data: { fields } });
    });
    return this.get(group);
  }
}
