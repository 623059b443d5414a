/**
 * A plain decision procedure with no compilation: every rule of every role is substituted and matched in turn.
 * It is the yardstick the compiled engine is tested and benchmarked against; production code uses `compilePolicy`.
 */
import { type Decision, type DecidingRule, type DeviceAction, type DeviceSubject, QUARANTINE_ROLE, QUARANTINED_STATUS } from "./model.js";
import type { PolicySnapshot } from "./engine.js";
import { parseFilterTemplate, substituteFilter } from "./resource-template.js";
import { filterCovers, filtersIntersect, isValidTopicFilter, isValidTopicName, topicMatches } from "./topic.js";

/** The same answer as `compilePolicy(snapshot).decide(...)`, computed the slow, obvious way. */
export function referenceDecide(snapshot: PolicySnapshot, subject: DeviceSubject, action: DeviceAction, topic: string): Decision {
  let roles: string[];
  if (subject.status === QUARANTINED_STATUS) roles = [QUARANTINE_ROLE];
  else {
    // The roles the subject carries (its registry role) first, then its own assignments, then its group's.
    roles = [...(subject.roles ?? [])];
    for (const kind of ["device", "group"] as const) {
      const target = kind === "device" ? subject.id : subject.group;
      for (const a of snapshot.assignments) if (a.kind === kind && a.target === target && !roles.includes(a.role)) roles.push(a.role);
    }
    roles = [...new Set(roles)];
  }
  const valid = action === "subscribe" ? isValidTopicFilter(topic) : isValidTopicName(topic);
  if (!valid) return { allow: false, rule: null, reason: "invalid-topic", roles };
  if (roles.length === 0) return { allow: false, rule: null, reason: "no-roles", roles };
  let allow: DecidingRule | null = null;
  for (const role of snapshot.roles) {
    if (!roles.includes(role.name)) continue;
    for (let index = 0; index < role.rules.length; index++) {
      const rule = role.rules[index]!;
      if (rule.action !== action) continue;
      const filter = substituteFilter(parseFilterTemplate(rule.resource), subject);
      if (filter === null) continue;
      const deciding: DecidingRule = { role: role.name, index, ...rule };
      if (rule.effect === "deny") {
        const hit = action === "subscribe" ? filtersIntersect(filter, topic) : topicMatches(filter, topic);
        if (hit) return { allow: false, rule: deciding, reason: "rule", roles };
      } else if (allow === null) {
        const hit = action === "subscribe" ? filterCovers(filter, topic) : topicMatches(filter, topic);
        if (hit) allow = deciding;
      }
    }
  }
  if (allow !== null) return { allow: true, rule: allow, reason: "rule", roles };
  return { allow: false, rule: null, reason: "no-matching-rule", roles };
}
