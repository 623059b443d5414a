/**
 * The device decision engine: roles compiled to one topic trie per action, assignments indexed by device and
 * group. `decide` is pure and synchronous so the broker can call it on every PUBLISH, SUBSCRIBE and delivery.
 */
import { MoatError } from "../errors.js";
import {
  type Assignment,
  type Decision,
  type DeviceAction,
  type DeviceSubject,
  type RoleDefinition,
  QUARANTINE_ROLE,
  QUARANTINED_STATUS,
  isDeviceAction,
} from "./model.js";
import { parseFilterTemplate, substituteFilter } from "./resource-template.js";
import { validateRole } from "./rule.js";
import { filterCovers, hasWildcard, topicFilterProblem, topicNameProblem } from "./topic.js";
import { MatchAccumulator, TopicTrie, TrieInterner } from "./topic-trie.js";

/** Everything a decision depends on: the roles and who holds them. */
export interface PolicySnapshot {
  roles: readonly RoleDefinition[];
  assignments: readonly Assignment[];
}

interface CompiledRole {
  readonly definition: RoleDefinition;
  readonly id: number;
}

/** Role names as held (for explanations) and the ids of the known roles among them (unknown names grant nothing). */
interface RoleSet {
  readonly names: readonly string[];
  readonly ids: readonly number[];
}

const NO_ROLES: RoleSet = Object.freeze({ names: Object.freeze([]), ids: Object.freeze([]) });

function roleSet(names: string[], compiled: ReadonlyMap<string, CompiledRole>): RoleSet {
  const ids: number[] = [];
  for (const name of names) {
    const role = compiled.get(name);
    if (role !== undefined && !ids.includes(role.id)) ids.push(role.id);
  }
  return Object.freeze({ names: Object.freeze(names), ids: Object.freeze(ids) });
}

function indexAssignments(
  assignments: readonly Assignment[],
  kind: "device" | "group",
  compiled: ReadonlyMap<string, CompiledRole>,
): Map<string, RoleSet> {
  const names = new Map<string, string[]>();
  for (const assignment of assignments) {
    if (assignment.kind !== kind) continue;
    const list = names.get(assignment.target);
    if (list === undefined) names.set(assignment.target, [assignment.role]);
    else if (!list.includes(assignment.role)) list.push(assignment.role);
  }
  const index = new Map<string, RoleSet>();
  for (const [target, list] of names) index.set(target, roleSet(list, compiled));
  return index;
}

/** A compiled, immutable policy. Rebuild it (compilePolicy) when roles or assignments change. */
export interface PolicyEngine {
  /**
   * Decides whether the device may perform the action on the topic (a topic name for publish/receive,
   * a topic filter for subscribe). Explicit deny wins, no matching rule means deny.
   */
  decide(subject: DeviceSubject, action: DeviceAction, topic: string): Decision;
  /** The roles that apply to the device: its own and its group's, or only `quarantine` when quarantined. */
  rolesOf(subject: DeviceSubject): readonly string[];
  /** The role definition by name. */
  role(name: string): RoleDefinition | undefined;
  readonly roleNames: readonly string[];
  readonly ruleCount: number;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((name, i) => name === b[i]));
}

/** Bound on the per-device cache of resolved role sets (cleared and refilled past it). */
const MAX_RESOLVED_DEVICES = 200_000;

/** Compiles roles and assignments into an engine. Throws `POLICY_RULE_INVALID` for a bad rule. */
export function compilePolicy(snapshot: PolicySnapshot): PolicyEngine {
  const compiled = new Map<string, CompiledRole>();
  const interner = new TrieInterner();
  // One trie per action for all roles; rules carry their role's id.
  const tries: Record<DeviceAction, TopicTrie> = { publish: new TopicTrie(interner), subscribe: new TopicTrie(interner), receive: new TopicTrie(interner) };
  let ordinal = 0;
  let ruleCount = 0;
  for (const raw of snapshot.roles) {
    const definition = validateRole(raw);
    if (compiled.has(definition.name))
      throw new MoatError("POLICY_RULE_INVALID", `Role '${definition.name}' is defined twice`, { detail: { role: definition.name } });
    const roleId = compiled.size;
    definition.rules.forEach((rule, index) => {
      ordinal++;
      if (!isDeviceAction(rule.action)) return;
      const explanation = Object.freeze({ role: definition.name, index, effect: rule.effect, action: rule.action, resource: rule.resource });
      const template = parseFilterTemplate(rule.resource);
      tries[rule.action].insert({ ordinal, roleId, effect: rule.effect, role: definition.name, index, rule, template, explanation });
      ruleCount++;
    });
    compiled.set(definition.name, { definition, id: roleId });
  }

  const byDevice = indexAssignments(snapshot.assignments, "device", compiled);
  const byGroup = indexAssignments(snapshot.assignments, "group", compiled);
  const quarantineOnly = roleSet([QUARANTINE_ROLE], compiled);
  // Each device's roles (those its subject carries, its own assignments, its group's), resolved once per
  // (device, group, carried roles) and reused: one map lookup on the hot path.
  const resolved = new Map<string, { group: string | null; carried: readonly string[]; set: RoleSet }>();

  function roleSetOf(subject: DeviceSubject): RoleSet {
    if (subject.status === QUARANTINED_STATUS) return quarantineOnly;
    const groupName = subject.group ?? null;
    const carried = subject.roles ?? NO_ROLES.names;
    const cached = resolved.get(subject.id);
    if (cached !== undefined && cached.group === groupName && sameNames(cached.carried, carried)) return cached.set;
    const set = resolveRoleSet(subject.id, groupName, carried);
    if (resolved.size >= MAX_RESOLVED_DEVICES) resolved.clear();
    resolved.set(subject.id, { group: groupName, carried, set });
    return set;
  }

  function resolveRoleSet(id: string, groupName: string | null, carried: readonly string[]): RoleSet {
    const own = byDevice.get(id);
    const group = groupName === null ? undefined : byGroup.get(groupName);
    if (carried.length === 0 && (own === undefined || group === undefined)) return own ?? group ?? NO_ROLES;
    const names: string[] = [];
    for (const list of [carried, own?.names ?? [], group?.names ?? []]) for (const role of list) if (!names.includes(role)) names.push(role);
    return roleSet(names, compiled);
  }

  // decide() is synchronous and never re-entered, so one accumulator serves every call.
  const acc = new MatchAccumulator();

  function decide(subject: DeviceSubject, action: DeviceAction, topic: string): Decision {
    const set = roleSetOf(subject);
    const roles = set.names;
    const isSubscribe = action === "subscribe";
    if (typeof topic !== "string" || (isSubscribe ? topicFilterProblem(topic) : topicNameProblem(topic)) !== null)
      return { allow: false, rule: null, reason: "invalid-topic", roles };
    if (roles.length === 0) return { allow: false, rule: null, reason: "no-roles", roles };
    if (set.ids.length > 0) {
      acc.reset(set.ids, isSubscribe && hasWildcard(topic));
      if (isSubscribe) tries.subscribe.matchFilter(topic.split("/"), subject, acc);
      else (action === "publish" ? tries.publish : tries.receive).matchName(topic, subject, acc);
    } else acc.reset(set.ids, false);
    if (acc.deny !== null) return { allow: false, rule: acc.deny.explanation, reason: "rule", roles };
    if (acc.candidates !== null) {
      // A wildcard request is granted only when one allowed filter covers all of it.
      for (const rule of acc.candidates) {
        if (acc.allow !== null && rule.ordinal >= acc.allow.ordinal) continue;
        const allowed = substituteFilter(rule.template, subject);
        if (allowed !== null && filterCovers(allowed, topic)) acc.allow = rule;
      }
    }
    if (acc.allow !== null) return { allow: true, rule: acc.allow.explanation, reason: "rule", roles };
    return { allow: false, rule: null, reason: "no-matching-rule", roles };
  }

  const roleNames = Object.freeze([...compiled.keys()]);
  return {
    decide,
    rolesOf: (subject) => roleSetOf(subject).names,
    role: (name) => compiled.get(name)?.definition,
    roleNames,
    ruleCount,
  };
}
