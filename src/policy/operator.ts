/**
 * Operator permissions: API routes declare a concrete action (`devices:read`); roles grant patterns
 * (`devices:*`, `*:read`, `*`). Explicit deny wins, no match means deny, the union of the token's roles applies.
 */
import type { RoleDefinition } from "./model.js";
import { isDeviceAction } from "./model.js";
import { isOperatorAction, validateRole } from "./rule.js";

/** The hook the API's auth layer calls for every route's `config.action`. */
export interface OperatorAuthorizer {
  allows(roleNames: readonly string[], action: string): boolean;
}

/** An operator decision with the pattern that decided it, for explanations. */
export interface OperatorDecision {
  allow: boolean;
  rule: { role: string; index: number; effect: "allow" | "deny"; action: string } | null;
}

interface CompiledOperatorRole {
  readonly allow: ReadonlySet<string>;
  readonly deny: ReadonlySet<string>;
  readonly rules: RoleDefinition["rules"];
}

/** The patterns that match `resource:verb`, most specific first. */
function patternsFor(action: string): readonly string[] {
  const colon = action.indexOf(":");
  const resource = action.slice(0, colon);
  const verb = action.slice(colon + 1);
  return [action, `${resource}:*`, `*:${verb}`, "*:*", "*"];
}

export interface OperatorAuthorizerWithExplain extends OperatorAuthorizer {
  /** Like `allows`, with the deciding rule. */
  decide(roleNames: readonly string[], action: string): OperatorDecision;
}

/**
 * Compiles the operator rules of the given roles. An unknown role name grants nothing; an action that is not
 * a concrete `<resource>:<verb>` is always refused.
 */
export function createOperatorAuthorizer(roles: readonly RoleDefinition[]): OperatorAuthorizerWithExplain {
  const compiled = new Map<string, CompiledOperatorRole>();
  for (const raw of roles) {
    const role = validateRole(raw);
    const allow = new Set<string>();
    const deny = new Set<string>();
    for (const rule of role.rules) {
      if (isDeviceAction(rule.action)) continue;
      (rule.effect === "deny" ? deny : allow).add(rule.action);
    }
    compiled.set(role.name, { allow, deny, rules: role.rules });
  }
  const patternCache = new Map<string, readonly string[]>();

  function find(roleNames: readonly string[], action: string, effect: "allow" | "deny"): OperatorDecision["rule"] {
    let patterns = patternCache.get(action);
    if (patterns === undefined) {
      patterns = patternsFor(action);
      if (patternCache.size < 10_000) patternCache.set(action, patterns);
    }
    for (const name of roleNames) {
      const role = compiled.get(name);
      if (role === undefined) continue;
      const set = effect === "deny" ? role.deny : role.allow;
      if (!patterns.some((p) => set.has(p))) continue;
      const index = role.rules.findIndex((r) => r.effect === effect && patterns!.includes(r.action));
      return { role: name, index, effect, action: role.rules[index]!.action };
    }
    return null;
  }

  function decide(roleNames: readonly string[], action: string): OperatorDecision {
    if (typeof action !== "string" || !isOperatorAction(action)) return { allow: false, rule: null };
    const deny = find(roleNames, action, "deny");
    if (deny !== null) return { allow: false, rule: deny };
    const allow = find(roleNames, action, "allow");
    return { allow: allow !== null, rule: allow };
  }

  return { decide, allows: (roleNames, action) => decide(roleNames, action).allow };
}
