/**
 * The device decision engine: roles compiled to one topic trie per action, assignments indexed by device and
 * group. `decide` is pure and synchronous so the broker can call it on every PUBLISH, SUBSCRIBE and delivery.
 */
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
import { type CompiledRule, MatchAccumulator, TopicTrie } from "./topic-trie.js";

/** Everything a decision depends on: the roles and who holds them. */
export interface PolicySnapshot {
  roles: readonly RoleDefinition[];
  assignments: readonly Assignment[];
}

interface CompiledRole {
  readonly definition: RoleDefinition;
  readonly tries: Readonly<Record<DeviceAction, TopicTrie | null>>;
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

const EMPTY: readonly string[] = Object.freeze([]);
const QUARANTINE_ONLY: readonly string[] = Object.freeze([QUARANTINE_ROLE]);

/** Compiles roles and assignments into an engine. Throws `POLICY_RULE_INVALID` for a bad rule. */
export function compilePolicy(snapshot: PolicySnapshot): PolicyEngine {
  const compiled = new Map<string, CompiledRole>();
  let ordinal = 0;
  let ruleCount = 0;
  for (const raw of snapshot.roles) {
    const definition = validateRole(raw);
    const tries: Record<DeviceAction, TopicTrie | null> = { publish: null, subscribe: null, receive: null };
    definition.rules.forEach((rule, index) => {
      ordinal++;
      if (!isDeviceAction(rule.action)) return;
      const trie = (tries[rule.action] ??= new TopicTrie());
      const explanation = Object.freeze({ role: definition.name, index, effect: rule.effect, action: rule.action, resource: rule.resource });
      const template = parseFilterTemplate(rule.resource);
      const entry: CompiledRule = { ordinal, effect: rule.effect, role: definition.name, index, rule, template, explanation };
      trie.insert(entry);
      ruleCount++;
    });
    compiled.set(definition.name, { definition, tries });
  }

  const byDevice = new Map<string, string[]>();
  const byGroup = new Map<string, string[]>();
  for (const { role, kind, target } of snapshot.assignments) {
    const index = kind === "device" ? byDevice : kind === "group" ? byGroup : null;
    if (index === null) continue;
    const list = index.get(target);
    if (list === undefined) index.set(target, [role]);
    else if (!list.includes(role)) list.push(role);
  }

  function rolesOf(subject: DeviceSubject): readonly string[] {
    if (subject.status === QUARANTINED_STATUS) return QUARANTINE_ONLY;
    const own = byDevice.get(subject.id);
    const group = subject.group === null || subject.group === undefined ? undefined : byGroup.get(subject.group);
    if (group === undefined) return own ?? EMPTY;
    if (own === undefined) return group;
    const union = own.slice();
    for (const role of group) if (!union.includes(role)) union.push(role);
    return union;
  }

  // decide() is synchronous and never re-entered, so one accumulator serves every call.
  const acc = new MatchAccumulator();

  function decide(subject: DeviceSubject, action: DeviceAction, topic: string): Decision {
    const roles = rolesOf(subject);
    const isSubscribe = action === "subscribe";
    if (typeof topic !== "string" || (isSubscribe ? topicFilterProblem(topic) : topicNameProblem(topic)) !== null)
      return { allow: false, rule: null, reason: "invalid-topic", roles };
    if (roles.length === 0) return { allow: false, rule: null, reason: "no-roles", roles };
    acc.reset(isSubscribe && hasWildcard(topic));
    const levels = isSubscribe ? topic.split("/") : null;
    for (let r = 0; r < roles.length; r++) {
      const trie = compiled.get(roles[r]!)?.tries[action];
      if (trie === undefined || trie === null) continue;
      if (levels === null) trie.matchName(topic, subject, acc);
      else trie.matchFilter(levels, subject, acc);
    }
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
    rolesOf,
    role: (name) => compiled.get(name)?.definition,
    roleNames,
    ruleCount,
  };
}
