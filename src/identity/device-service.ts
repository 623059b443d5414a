import { MoatError } from "../errors.js";
import { MAX_PAGE_ITEMS, pageLimit } from "../lib/page.js";
import type { ChangeData } from "../ports.js";
import { assertDeviceId } from "./device-id.js";
import { assertGroupName } from "./group-name.js";
import { DEVICE_STATUSES, type DeviceFilter, type DeviceRecord, type DeviceStatus, type IdentityStore, type IdentityUnitOfWork } from "./ports.js";

const ROLE_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/;
const ATTRIBUTE_KEY_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
const MAX_ATTRIBUTES = 64;
const MAX_ATTRIBUTE_VALUE = 256;

/** Allowed status changes. A decommissioned device never comes back. */
const TRANSITIONS: Record<DeviceStatus, readonly DeviceStatus[]> = {
  pending: ["active", "suspended", "quarantined", "decommissioned"],
  active: ["suspended", "quarantined", "decommissioned"],
  suspended: ["active", "quarantined", "decommissioned"],
  quarantined: ["active", "suspended", "decommissioned"],
  decommissioned: [],
};

export interface CreateDeviceInput {
  id: string;
  name?: string;
  group?: string | null;
  role?: string;
  status?: "pending" | "active";
  attributes?: Record<string, string>;
}

/** The registry fields an update may change (listed in the `device.updated` feed row). */
type UpdatedField = ChangeData<"device.updated">["fields"][number];

export interface UpdateDeviceInput {
  name?: string;
  group?: string | null;
  role?: string;
  attributes?: Record<string, string>;
}

function assertStatus(status: unknown): asserts status is DeviceStatus {
  if (!DEVICE_STATUSES.includes(status as DeviceStatus))
    throw new MoatError("VALIDATION_FAILED", `status ${JSON.stringify(status)} is not one of ${DEVICE_STATUSES.join(", ")}`);
}

function checkName(name: unknown): string {
  if (typeof name !== "string" || name.length === 0 || name.length > 200 || /[\u0000-\u001f]/.test(name))
    throw new MoatError("VALIDATION_FAILED", "name must be 1-200 printable characters");
  return name;
}

function checkGroup(group: unknown): string | null {
  if (group === null || group === undefined || group === "") return null;
  assertGroupName(group);
  return group;
}

function checkRole(role: unknown): string {
  if (typeof role !== "string" || !ROLE_PATTERN.test(role))
    throw new MoatError("VALIDATION_FAILED", `role ${JSON.stringify(role)} is not valid: lower-case letters, digits, _ and -`);
  return role;
}

function checkAttributes(attributes: unknown): Record<string, string> {
  if (attributes === undefined) return {};
  if (attributes === null || typeof attributes !== "object" || Array.isArray(attributes))
    throw new MoatError("VALIDATION_FAILED", "attributes must be an object of string values");
  const entries = Object.entries(attributes);
  if (entries.length > MAX_ATTRIBUTES) throw new MoatError("VALIDATION_FAILED", `at most ${MAX_ATTRIBUTES} attributes`);
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (!ATTRIBUTE_KEY_PATTERN.test(key)) throw new MoatError("VALIDATION_FAILED", `attribute name ${JSON.stringify(key)} is not valid`);
    if (typeof value !== "string" || value.length > MAX_ATTRIBUTE_VALUE)
      throw new MoatError("VALIDATION_FAILED", `attribute ${key} must be a string of at most ${MAX_ATTRIBUTE_VALUE} characters`);
    out[key] = value;
  }
  return out;
}

/** One field's change as the audit event records it. */
type FieldChange = { from: unknown; to: unknown };

/** The device registry: create, read, update, and status changes with their events and feed rows. */
export class DeviceService {
  constructor(
    private readonly store: IdentityStore,
    /** May a device hold this role? (The policy domain owns roles: it must exist and grant device actions only.) */
    private readonly isDeviceRole: (role: string) => Promise<boolean>,
  ) {}

  private async checkAssignableRole(role: unknown): Promise<string> {
    const name = checkRole(role);
    if (!(await this.isDeviceRole(name)))
      throw new MoatError("DEVICE_ROLE_INVALID", `role ${JSON.stringify(name)} does not exist or is not a device role`, { detail: { role: name } });
    return name;
  }

  async create(input: CreateDeviceInput, actor: string): Promise<DeviceRecord> {
    assertDeviceId(input.id);
    const status = input.status ?? "pending";
    if (status !== "pending" && status !== "active") throw new MoatError("VALIDATION_FAILED", "a new device starts as pending or active");
    const now = new Date().toISOString();
    const device: DeviceRecord = {
      id: input.id,
      name: input.name === undefined ? input.id : checkName(input.name),
      group: checkGroup(input.group),
      role: await this.checkAssignableRole(input.role ?? "device"),
      status,
      attributes: checkAttributes(input.attributes),
      createdAt: now,
      updatedAt: now,
      lastSeenAt: null,
      lastSeenAddress: null,
    };
    return this.store.transact(async (uow) => {
      if (await uow.devices.get(device.id)) throw new MoatError("DEVICE_EXISTS", `device ${device.id} already exists`);
      await uow.devices.insert(device);
      await uow.events.append({ type: "device.created", actor, subject: device.id, data: { group: device.group, role: device.role, status } });
      await uow.changes.append({ kind: "device.created", subject: device.id, data: { role: device.role, group: device.group, status } });
      return device;
    });
  }

  async get(id: string): Promise<DeviceRecord> {
    assertDeviceId(id);
    const device = await this.store.devices.get(id);
    if (!device) throw new MoatError("DEVICE_NOT_FOUND", `no device ${id}`);
    return device;
  }

  /** The fleet at a glance: devices per status (every status, zero included) and in the 50 largest groups. */
  async summary(): Promise<{ total: number; byStatus: Record<DeviceStatus, number>; byGroup: { group: string | null; count: number }[] }> {
    const tally = await this.store.devices.tally(50);
    const byStatus = Object.fromEntries(DEVICE_STATUSES.map((s) => [s, tally.byStatus[s] ?? 0])) as Record<DeviceStatus, number>;
    return { total: Object.values(byStatus).reduce((a, b) => a + b, 0), byStatus, byGroup: tally.byGroup };
  }

  async list(filter: DeviceFilter = {}): Promise<{ devices: DeviceRecord[]; next: string | null }> {
    if (filter.status !== undefined) assertStatus(filter.status);
    const limit = pageLimit(filter.limit, 100);
    const devices = await this.store.devices.list({ ...filter, limit: limit + 1 });
    const page = devices.slice(0, limit);
    return { devices: page, next: devices.length > limit ? page[page.length - 1]!.id : null };
  }

  /** Every device of a group, page by page (campaigns address a whole group). */
  async devicesInGroup(group: string): Promise<DeviceRecord[]> {
    const all: DeviceRecord[] = [];
    for (let after: string | undefined; ; ) {
      const page = await this.list({ group, limit: MAX_PAGE_ITEMS, ...(after ? { after } : {}) });
      all.push(...page.devices);
      if (!page.next) return all;
      after = page.next;
    }
  }

  count(filter: Omit<DeviceFilter, "after" | "limit"> = {}): Promise<number> {
    return this.store.devices.count(filter);
  }

  async update(id: string, patch: UpdateDeviceInput, actor: string): Promise<DeviceRecord> {
    assertDeviceId(id);
    const changes: Partial<Pick<DeviceRecord, UpdatedField>> = {};
    if (patch.name !== undefined) changes.name = checkName(patch.name);
    if (patch.group !== undefined) changes.group = checkGroup(patch.group);
    if (patch.role !== undefined) changes.role = await this.checkAssignableRole(patch.role);
    if (patch.attributes !== undefined) changes.attributes = checkAttributes(patch.attributes);
    return this.store.transact(async (uow) => {
      const device = await this.mustGet(uow, id);
      if (device.status === "decommissioned") throw new MoatError("DEVICE_STATUS_TRANSITION", `device ${id} is decommissioned and cannot be changed`);
      const updated: DeviceRecord = { ...device, ...changes, updatedAt: new Date().toISOString() };
      await uow.devices.update(updated);
      const fields = Object.keys(changes) as UpdatedField[];
      // The event says what each field was and became, so a role change can be traced and undone.
      const diff: Record<string, FieldChange> = {};
      for (const field of fields) diff[field] = { from: device[field], to: updated[field] };
      // A role change is a privilege change: it stands out among routine edits.
      const severity = diff.role !== undefined && device.role !== updated.role ? "medium" : "info";
      await uow.events.append({ type: "device.updated", severity, actor, subject: id, data: { fields, changes: diff } });
      // Group, role and attributes feed policy decisions: enforcement points must recompute.
      await uow.changes.append({ kind: "device.updated", subject: id, data: { fields } });
      return updated;
    });
  }

  /** Changes status if the transition is allowed; the same status again is a no-op. */
  async setStatus(id: string, status: DeviceStatus, actor: string, reason?: string): Promise<DeviceRecord> {
    assertDeviceId(id);
    assertStatus(status);
    return this.store.transact(async (uow) => this.setStatusIn(uow, id, status, actor, reason));
  }

  /** The same, inside a caller's transaction (e.g. PKI activating a pending device on first certificate). */
  async setStatusIn(uow: IdentityUnitOfWork, id: string, status: DeviceStatus, actor: string, reason?: string): Promise<DeviceRecord> {
    const device = await this.mustGet(uow, id);
    if (device.status === status) return device;
    if (!TRANSITIONS[device.status].includes(status))
      throw new MoatError("DEVICE_STATUS_TRANSITION", `device ${id} cannot go from ${device.status} to ${status}`, { detail: { from: device.status, to: status } });
    const updated: DeviceRecord = { ...device, status, updatedAt: new Date().toISOString() };
    await uow.devices.update(updated);
    const severity = status === "quarantined" || status === "suspended" ? "medium" : "info";
    await uow.events.append({ type: "device.status_changed", severity, actor, subject: id, data: { from: device.status, to: status, ...(reason ? { reason } : {}) } });
    await uow.changes.append({ kind: "device.status", subject: id, data: { from: device.status, to: status } });
    return updated;
  }

  /** Batched last-seen updates from enforcement points (not one write per message). */
  recordSeen(entries: { id: string; at: string; address: string | null }[]): Promise<void> {
    return entries.length === 0 ? Promise.resolve() : this.store.devices.recordSeen(entries);
  }

  private async mustGet(uow: IdentityUnitOfWork, id: string): Promise<DeviceRecord> {
    const device = await uow.devices.get(id, { forUpdate: true });
    if (!device) throw new MoatError("DEVICE_NOT_FOUND", `no device ${id}`);
    return device;
  }
}
