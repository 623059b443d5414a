/**
 * The policy service: roles and assignments in the store, a compiled engine in memory. Every change is
 * written with its change-feed row and security event in one transaction; the engine is recompiled when
 * the feed reports a change (from this process or any other). All I/O goes through the `PolicyStore` port.
 */
import { MoatError } from "../errors.js";
import type { Change } from "../ports.js";
import { BUILTIN_ROLES, isBuiltinRoleName } from "./builtin-roles.js";
import { type PolicyEngine, compilePolicy } from "./engine.js";
import { type LintFinding, lintPolicy } from "./lint.js";
import {
  type Assignment,
  type AssignmentKind,
  type Decision,
  type DeviceAction,
  type DeviceSubject,
  type Effect,
  type RoleDefinition,
  type Rule,
  isDeviceAction,
} from "./model.js";
import { type OperatorAuthorizer, type OperatorAuthorizerWithExplain, createOperatorAuthorizer } from "./operator.js";
import type { AssignmentRecord, PolicyStore, PolicyUnitOfWork, RoleRecord, RoleRepository } from "./ports.js";
import { assertRoleName, validateRole } from "./rule.js";
import { topicFilterProblem, topicNameProblem } from "./topic.js";

/** A permission as the seed guide wrote it (`{ resource, action }`, meaning allow), or a full rule. */
export type Permission = { resource: string; action: string; effect?: Effect };

/** A role with who holds it. */
export interface RoleView extends RoleRecord {
  assignments: AssignmentRecord[];
}

export interface AssignmentTarget {
  kind: AssignmentKind;
  target: string;
}

/** `moat policy check`: the decision plus the device facts it was made on. */
export interface PolicyCheck extends Decision {
  device: { id: string; group: string | null; status: string; role: string };
  action: DeviceAction;
  topic: string;
}

/** Group and token names, as the identity domain accepts them. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** How many feed rows `applyChange` remembers, so the same row arriving twice (two followers) loads once. */
const APPLIED_LIMIT = 1_000;

function toRule(permission: Permission | Rule): Rule {
  if (permission === null || typeof permission !== "object")
    throw new MoatError("POLICY_RULE_INVALID", "A permission must be an object with action and resource");
  return { effect: permission.effect ?? "allow", action: permission.action, resource: permission.resource };
}

/**
 * May a device hold this role? It must exist and grant device actions only. A function of its own so the
 * device registry can ask without building the policy service.
 */
export async function isDeviceRoleIn(roles: Pick<RoleRepository, "get">, name: string): Promise<boolean> {
  const role = BUILTIN_ROLES.find((r) => r.name === name) ?? (await roles.get(name));
  return role !== undefined && role.rules.every((rule) => isDeviceAction(rule.action));
}

export class PolicyService implements OperatorAuthorizer {
  private engine: PolicyEngine;
  private operators: OperatorAuthorizerWithExplain;
  private tokenRoles = new Map<string, string[]>();
  private loaded = false;
  private dirty = true;
  private pending: Promise<void> | null = null;
  /** Feed rows applied or being applied, by seq. */
  private readonly applied = new Map<number, Promise<void>>();

  constructor(
    private readonly store: PolicyStore,
    private readonly now: () => number = Date.now,
  ) {
    // Until the first reload, only the built-in roles exist and nothing is assigned: everything but
    // built-in operator roles is denied.
    this.engine = compilePolicy({ roles: BUILTIN_ROLES, assignments: [] });
    this.operators = createOperatorAuthorizer(BUILTIN_ROLES);
  }

  // --- compiled state ---

  /**
   * Loads roles and assignments from the store and recompiles. Calls during a load share it and cause one
   * more load after it, so a burst of changes costs two loads, not one per change.
   */
  reload(): Promise<void> {
    this.dirty = true;
    this.pending ??= this.reloadWhileDirty().finally(() => {
      this.pending = null;
    });
    return this.pending;
  }

  private async reloadWhileDirty(): Promise<void> {
    while (this.dirty) {
      this.dirty = false;
      try {
        await this.load();
      } catch (error) {
        this.dirty = true; // the next check or change retries
        throw error;
      }
    }
  }

  /**
   * Roles and explicit assignments only: a device's registry role and group come with each decision's
   * subject (read with the device), so no reload ever reads the device registry.
   */
  private async load(): Promise<void> {
    const [stored, explicit] = await Promise.all([this.store.roles.list(), this.store.assignments.list()]);
    const roles = this.definitions(stored);
    const assignments: Assignment[] = explicit.map((a) => ({ role: a.role, kind: a.kind, target: a.target }));
    const tokenRoles = new Map<string, string[]>();
    for (const a of explicit) if (a.kind === "token") tokenRoles.set(a.target, [...(tokenRoles.get(a.target) ?? []), a.role]);
    this.engine = compilePolicy({ roles, assignments });
    this.operators = createOperatorAuthorizer(roles);
    this.tokenRoles = tokenRoles;
    this.loaded = true;
  }

  /** Built-in roles come from code (they cannot be edited); the others from the store. */
  private definitions(stored: readonly RoleRecord[]): RoleDefinition[] {
    const custom = stored.filter((r) => !isBuiltinRoleName(r.name));
    return [...BUILTIN_ROLES, ...custom.map((r) => ({ name: r.name, description: r.description, rules: r.rules }))];
  }

  /**
   * Applies one change-feed row: a role or assignment change recompiles, and the promise settles once
   * the compiled state includes it, so an enforcement point that awaits it (the broker, before it
   * re-checks live sessions) decides with the new policy. Other kinds change nothing here: device facts
   * reach decisions through the subject. The same row applied twice (this process's follower and the
   * broker's pipeline) shares one load.
   */
  applyChange(change: Change): Promise<void> {
    if (change.kind !== "policy.changed" && change.kind !== "role.assignment") return Promise.resolve();
    let applying = this.applied.get(change.seq);
    if (applying === undefined) {
      const seq = change.seq;
      applying = this.reload();
      // A failed load stays dirty (the next relevant row or check loads again) and the row may be retried.
      applying.catch(() => this.applied.delete(seq));
      this.applied.set(seq, applying);
      if (this.applied.size > APPLIED_LIMIT) this.applied.delete(this.applied.keys().next().value!);
    }
    return applying;
  }

  private async fresh(): Promise<void> {
    if (this.pending) await this.pending;
    if (!this.loaded || this.dirty) await this.reload();
  }

  /**
   * The broker's hook: decides from the compiled state without I/O. The subject carries what the
   * registry says of the device (status, group, attributes, registry role in `roles`).
   */
  decide(subject: DeviceSubject, action: DeviceAction, topic: string): Decision {
    return this.engine.decide(subject, action, topic);
  }

  /**
   * The device rules that apply to the subject, each with the role it comes from (its roles as `decide`
   * resolves them: quarantine alone for a quarantined device). A data plane that compiles per-device
   * permissions ahead of time (Mosquitto's dynamic security) reads them; operator rules are left out.
   */
  deviceRules(subject: DeviceSubject): { role: string; rule: Rule }[] {
    const out: { role: string; rule: Rule }[] = [];
    for (const name of this.engine.rolesOf(subject)) {
      const role = this.engine.role(name);
      if (role === undefined) continue;
      for (const rule of role.rules) if (isDeviceAction(rule.action)) out.push({ role: name, rule });
    }
    return out;
  }

  /** The API's hook: may operators holding these roles perform the action (`devices:read`)? */
  allows(roleNames: readonly string[], action: string): boolean {
    return this.operators.allows(roleNames, action);
  }

  /** The roles an operator token holds: its registry role plus roles assigned to it by name. */
  operatorRolesOf(token: { name: string; role: string }): string[] {
    const assigned = this.tokenRoles.get(token.name) ?? [];
    return [token.role, ...assigned.filter((r) => r !== token.role)];
  }

  /** Like `allows`, with the token's assigned roles included. */
  allowsToken(token: { name: string; role: string }, action: string): boolean {
    return this.operators.allows(this.operatorRolesOf(token), action);
  }

  // --- roles ---

  /** Stores the built-in roles that are not stored yet (for `moat init`); returns the names written. */
  async seedBuiltins(actor: string): Promise<string[]> {
    const written = await this.store.transact(async (uow) => {
      const names: string[] = [];
      for (const role of BUILTIN_ROLES) {
        if (await uow.roles.get(role.name)) continue;
        const at = new Date(this.now()).toISOString();
        await uow.roles.insert({ name: role.name, description: role.description ?? "", rules: [...role.rules], builtin: true, createdAt: at, updatedAt: at });
        names.push(role.name);
      }
      if (names.length > 0) {
        await uow.events.append({ type: "role.created", actor, subject: names.join(","), data: { builtin: true, roles: names } });
        await uow.changes.append({ kind: "policy.changed", subject: names.join(","), data: { op: "seeded" } });
      }
      return names;
    });
    await this.reload();
    return written;
  }

  /**
   * Creates a role. `permissions` are rules (`{effect, action, resource}`) or the seed's
   * `{resource, action}` pairs, which allow. Throws ROLE_EXISTS, ROLE_BUILTIN, ROLE_NAME_INVALID or
   * POLICY_RULE_INVALID; nothing is written then.
   */
  async createRole(name: string, permissions: ReadonlyArray<Permission | Rule>, actor: string, options: { description?: string } = {}): Promise<RoleView> {
    assertRoleName(name);
    if (!Array.isArray(permissions)) throw new MoatError("POLICY_RULE_INVALID", "permissions must be a list of rules");
    const definition = validateRole({ name, rules: permissions.map(toRule), ...(options.description === undefined ? {} : { description: options.description }) });
    if (isBuiltinRoleName(name)) throw new MoatError("ROLE_BUILTIN", `'${name}' is a built-in role and cannot be redefined`, { detail: { role: name } });
    const at = new Date(this.now()).toISOString();
    const record: RoleRecord = { name, description: definition.description ?? "", rules: [...definition.rules], builtin: false, createdAt: at, updatedAt: at };
    await this.store.transact(async (uow) => {
      if (await uow.roles.get(name)) throw new MoatError("ROLE_EXISTS", `A role named '${name}' exists`, { detail: { role: name } });
      await uow.roles.insert(record);
      await uow.events.append({ type: "role.created", actor, subject: name, data: { rules: record.rules.length } });
      await uow.changes.append({ kind: "policy.changed", subject: name, data: { op: "created" } });
    });
    await this.reload();
    return { ...record, assignments: [] };
  }

  /** Deletes a custom role and its assignments. A role still recorded as a device's or token's registry role is refused. */
  async deleteRole(name: string, actor: string): Promise<{ role: string; removedAssignments: AssignmentRecord[] }> {
    assertRoleName(name);
    if (isBuiltinRoleName(name)) throw new MoatError("ROLE_BUILTIN", `'${name}' is a built-in role and cannot be deleted`, { detail: { role: name } });
    const removed = await this.store.transact(async (uow) => {
      if (!(await uow.roles.get(name))) throw new MoatError("ROLE_NOT_FOUND", `No role named '${name}'`, { detail: { role: name } });
      const use = await uow.subjects.registryRoleUse(name);
      if (use.devices > 0 || use.tokens > 0)
        throw new MoatError("ROLE_IN_USE", `Role '${name}' is the registry role of ${use.devices} device(s) and ${use.tokens} token(s); change those first`, {
          detail: { role: name, ...use },
        });
      const assignments = await uow.assignments.deleteForRole(name);
      await uow.roles.delete(name);
      await uow.events.append({
        type: "role.deleted",
        severity: "low",
        actor,
        subject: name,
        data: { removedAssignments: assignments.map((a) => `${a.kind}:${a.target}`) },
      });
      await uow.changes.append({ kind: "policy.changed", subject: name, data: { op: "deleted" } });
      return assignments;
    });
    await this.reload();
    return { role: name, removedAssignments: removed };
  }

  async listRoles(): Promise<RoleView[]> {
    const [stored, assignments] = await Promise.all([this.store.roles.list(), this.store.assignments.list()]);
    return this.views(stored, assignments);
  }

  async getRole(name: string): Promise<RoleView> {
    assertRoleName(name);
    const [stored, assignments] = await Promise.all([this.store.roles.get(name), this.store.assignments.list({ role: name })]);
    const views = this.views(stored ? [stored] : [], assignments).filter((v) => v.name === name);
    if (views.length === 0) throw new MoatError("ROLE_NOT_FOUND", `No role named '${name}'`, { detail: { role: name } });
    return views[0]!;
  }

  /** Stored roles with their assignments; built-in roles show their rules from code even before seeding. */
  private views(stored: readonly RoleRecord[], assignments: readonly AssignmentRecord[]): RoleView[] {
    const byName = new Map(stored.map((r) => [r.name, r]));
    const out: RoleView[] = [];
    for (const builtin of BUILTIN_ROLES) {
      const row = byName.get(builtin.name);
      byName.delete(builtin.name);
      out.push({
        name: builtin.name,
        description: builtin.description ?? "",
        rules: [...builtin.rules],
        builtin: true,
        createdAt: row?.createdAt ?? "",
        updatedAt: row?.updatedAt ?? "",
        assignments: [],
      });
    }
    for (const row of [...byName.values()].sort((a, b) => a.name.localeCompare(b.name))) out.push({ ...row, builtin: false, assignments: [] });
    const index = new Map(out.map((v) => [v.name, v]));
    for (const a of assignments) index.get(a.role)?.assignments.push(a);
    return out;
  }

  // --- assignments ---

  /** Gives a role to a device, a device group or an operator token. Assigning twice is a no-op (`created: false`). */
  async assignRole(role: string, to: AssignmentTarget, actor: string): Promise<{ assignment: AssignmentRecord; created: boolean }> {
    assertRoleName(role);
    this.assertTarget(to);
    const assignment: AssignmentRecord = { role, kind: to.kind, target: to.target, createdAt: new Date(this.now()).toISOString(), createdBy: actor };
    const created = await this.store.transact(async (uow) => {
      await this.mustHaveRole(uow, role);
      await this.mustHaveTarget(uow, to);
      if (!(await uow.assignments.insert(assignment))) return false;
      await uow.events.append({ type: "role.assigned", severity: "low", actor, subject: role, data: { kind: to.kind, target: to.target } });
      await uow.changes.append({ kind: "role.assignment", subject: role, data: { op: "assigned", kind: to.kind, target: to.target } });
      return true;
    });
    await this.reload();
    return { assignment, created };
  }

  /** Takes a role away again. Throws ROLE_ASSIGNMENT_NOT_FOUND when there is no such assignment. */
  async unassignRole(role: string, from: AssignmentTarget, actor: string): Promise<void> {
    assertRoleName(role);
    this.assertTarget(from);
    await this.store.transact(async (uow) => {
      if (!(await uow.assignments.delete({ role, kind: from.kind, target: from.target })))
        throw new MoatError("ROLE_ASSIGNMENT_NOT_FOUND", `Role '${role}' is not assigned to ${from.kind} '${from.target}'`, {
          detail: { role, kind: from.kind, target: from.target },
        });
      await uow.events.append({ type: "role.unassigned", severity: "low", actor, subject: role, data: { kind: from.kind, target: from.target } });
      await uow.changes.append({ kind: "role.assignment", subject: role, data: { op: "unassigned", kind: from.kind, target: from.target } });
    });
    await this.reload();
  }

  private assertTarget(to: AssignmentTarget): void {
    if (to.kind !== "device" && to.kind !== "group" && to.kind !== "token")
      throw new MoatError("VALIDATION_FAILED", `assignment kind ${JSON.stringify(to.kind)} is not device, group or token`);
    const valid = typeof to.target === "string" && (to.kind === "device" ? this.store.subjects.isDeviceId(to.target) : NAME.test(to.target));
    if (!valid)
      throw new MoatError(to.kind === "device" ? "DEVICE_ID_INVALID" : "VALIDATION_FAILED", `${to.kind} ${JSON.stringify(to.target)} is not a valid name`);
  }

  private async mustHaveRole(uow: PolicyUnitOfWork, role: string): Promise<void> {
    if (!isBuiltinRoleName(role) && !(await uow.roles.get(role)))
      throw new MoatError("ROLE_NOT_FOUND", `No role named '${role}'`, { detail: { role } });
  }

  private async mustHaveTarget(uow: PolicyUnitOfWork, to: AssignmentTarget): Promise<void> {
    if (to.kind === "device" && !(await uow.subjects.device(to.target)))
      throw new MoatError("DEVICE_NOT_FOUND", `no device ${to.target}`, { detail: { device: to.target } });
    if (to.kind === "token" && (await uow.subjects.tokenRole(to.target)) === undefined)
      throw new MoatError("TOKEN_NOT_FOUND", `no API token named ${to.target}`, { detail: { token: to.target } });
  }

  // --- decisions ---

  /**
   * The seed's `checkPermission`, for real: may the device perform `action` (publish, subscribe, receive)
   * on `resource` (a topic name, or a topic filter for subscribe)? Reads the device's current status,
   * group and attributes; the compiled roles are brought up to date first.
   */
  async checkPermission(deviceId: string, resource: string, action: string): Promise<boolean> {
    return (await this.explain(deviceId, action, resource)).allow;
  }

  /** `moat policy check`: the decision with its deciding rule. Throws for an unknown device, action or bad topic. */
  async explain(deviceId: string, action: string, topic: string, options: { certCn?: string } = {}): Promise<PolicyCheck> {
    if (!isDeviceAction(action))
      throw new MoatError("VALIDATION_FAILED", `action ${JSON.stringify(action)} is not publish, subscribe or receive`, { detail: { action } });
    const problem = typeof topic !== "string" ? "is not text" : action === "subscribe" ? topicFilterProblem(topic) : topicNameProblem(topic);
    if (problem !== null)
      throw new MoatError("POLICY_TOPIC_INVALID", `${action === "subscribe" ? "Topic filter" : "Topic"} ${JSON.stringify(topic)} ${problem}`, { detail: { topic } });
    const device = await this.store.subjects.device(deviceId);
    if (!device) throw new MoatError("DEVICE_NOT_FOUND", `no device ${deviceId}`, { detail: { device: deviceId } });
    await this.fresh();
    // The registry role is read with the device, so a device created a moment ago is judged correctly too.
    const subject: DeviceSubject = {
      id: device.id,
      group: device.group,
      status: device.status,
      attributes: device.attributes,
      certCn: options.certCn ?? null,
      roles: [device.role],
    };
    const decision = this.engine.decide(subject, action, topic);
    return { ...decision, device: { id: device.id, group: device.group, status: device.status, role: device.role }, action, topic };
  }

  /** Lints every role; holder counts come from registry roles, device and group assignments. */
  async lint(): Promise<LintFinding[]> {
    const [stored, assignments, devices] = await Promise.all([this.store.roles.list(), this.store.assignments.list(), this.store.subjects.devices()]);
    const byGroup = new Map<string, string[]>();
    for (const d of devices) if (d.group !== null) byGroup.set(d.group, [...(byGroup.get(d.group) ?? []), d.id]);
    const holders = new Map<string, Set<string>>();
    const hold = (role: string, id: string) => (holders.get(role) ?? holders.set(role, new Set()).get(role)!).add(id);
    for (const d of devices) hold(d.role, d.id);
    for (const a of assignments) {
      if (a.kind === "device") hold(a.role, a.target);
      else if (a.kind === "group") for (const id of byGroup.get(a.target) ?? []) hold(a.role, id);
    }
    const counts = new Map([...holders].map(([role, ids]) => [role, ids.size]));
    return lintPolicy(this.definitions(stored), { holders: counts });
  }

  /**
   * For the device registry: may a device hold this role? It must exist and grant no operator permission
   * (`admin`'s `*` would let a device publish anywhere).
   */
  isDeviceRole(name: string): Promise<boolean> {
    return isDeviceRoleIn(this.store.roles, name);
  }

  /** Does the group carry role assignments? Then joining or leaving it changes a device's roles. */
  async groupHoldsRoles(group: string): Promise<boolean> {
    return (await this.store.assignments.list({ kind: "group", target: group })).length > 0;
  }

  /** For the token service: does this role exist and grant any operator permission? */
  async isOperatorRole(name: string): Promise<boolean> {
    const builtin = BUILTIN_ROLES.find((r) => r.name === name);
    const role = builtin ?? (await this.store.roles.get(name));
    return role !== undefined && role.rules.some((rule) => !isDeviceAction(rule.action));
  }
}
