/**
 * Moat's device policy compiled into Mosquitto dynamic-security ACLs, one set per device with every
 * variable filled in. Pure: no I/O.
 *
 * How the two models line up (docs/broker.md, "What dynamic security cannot express"):
 * - Moat: explicit deny wins, no rule means deny. Dynsec: the first matching ACL by priority decides,
 *   the default access decides when none matches. So every deny gets a higher priority than every allow,
 *   and the default access for publish, subscribe and receive is deny (setup writes it).
 * - publish and receive are about topic names: Moat's "matches" and dynsec's `publishClientSend` /
 *   `publishClientReceive` pattern match are the same test (MQTT 3.1.1 §4.7, `$` topics excluded from
 *   first-level wildcards on both sides).
 * - subscribe: an allow must cover the whole request on both sides (`subscribePattern`). A Moat deny
 *   refuses a request it merely overlaps; a dynsec deny only one it covers. A deny that overlaps a
 *   wildcard request without covering it cannot be written as a dynsec pattern, so each subscribe deny
 *   is also compiled as a receive deny: whatever Mosquitto accepts, no message on a denied filter is
 *   delivered, and every message it does deliver is one the device could have subscribed to by name
 *   under Moat's rules. Only the SUBACK differs for such wide wildcard requests.
 */
import { parseFilterTemplate, substituteFilter, type DeviceSubject, type Rule } from "../policy/index.js";

/** The dynsec ACL types Moat writes. */
export type DynsecAclType = "publishClientSend" | "publishClientReceive" | "subscribePattern";

export interface DynsecAcl {
  acltype: DynsecAclType;
  topic: string;
  priority: number;
  allow: boolean;
}

/** Priority of a deny: above every allow, so an explicit deny wins as it does in Moat's engine. */
export const DENY_PRIORITY = 10;
export const ALLOW_PRIORITY = 0;

const ACL_TYPE_OF = { publish: "publishClientSend", receive: "publishClientReceive", subscribe: "subscribePattern" } as const;

/**
 * The ACLs of one device: its rules (as the policy resolves its roles) with variables expanded for the
 * subject. A rule whose variable is missing or unsafe is left out, as the engine lets it match nothing.
 * Sorted and free of duplicates, so two compilations of the same policy compare equal.
 */
export function compileDeviceAcls(rules: readonly { rule: Rule }[], subject: DeviceSubject): DynsecAcl[] {
  const byKey = new Map<string, DynsecAcl>();
  const add = (acltype: DynsecAclType, topic: string, allow: boolean): void => {
    const key = `${acltype}\u0000${topic}`;
    const existing = byKey.get(key);
    // Dynsec holds one ACL per type and topic; where an allow and a deny name the same filter, the deny wins.
    if (existing !== undefined && !existing.allow) return;
    byKey.set(key, { acltype, topic, priority: allow ? ALLOW_PRIORITY : DENY_PRIORITY, allow });
  };
  for (const { rule } of rules) {
    if (rule.action !== "publish" && rule.action !== "subscribe" && rule.action !== "receive") continue;
    const topic = substituteFilter(parseFilterTemplate(rule.resource), subject);
    if (topic === null) continue;
    const allow = rule.effect === "allow";
    add(ACL_TYPE_OF[rule.action], topic, allow);
    // A subscribe deny also withholds delivery (see the module comment).
    if (rule.action === "subscribe" && !allow) add("publishClientReceive", topic, false);
  }
  return sortAcls([...byKey.values()]);
}

/** Canonical order: type, then topic. */
export function sortAcls(acls: readonly DynsecAcl[]): DynsecAcl[] {
  return [...acls].sort((a, b) => (a.acltype === b.acltype ? (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0) : a.acltype < b.acltype ? -1 : 1));
}

/** The identity of an ACL inside a role (dynsec removes ACLs by type and topic). */
export function aclKey(acl: Pick<DynsecAcl, "acltype" | "topic">): string {
  return `${acl.acltype}\u0000${acl.topic}`;
}

/** True when both lists hold the same ACLs (order aside). */
export function sameAcls(a: readonly DynsecAcl[], b: readonly DynsecAcl[]): boolean {
  if (a.length !== b.length) return false;
  const left = sortAcls(a);
  const right = sortAcls(b);
  return left.every((acl, i) => acl.acltype === right[i]!.acltype && acl.topic === right[i]!.topic && acl.allow === right[i]!.allow && acl.priority === right[i]!.priority);
}
