/** Parsing and validation of rules and role definitions (the shapes people type and the API accepts). */
import { MoatError } from "../errors.js";
import { type Effect, type RoleDefinition, type Rule, isDeviceAction } from "./model.js";
import { parseFilterTemplate } from "./resource-template.js";

/** The same shape the device registry accepts for a device's role. */
const ROLE_NAME = /^[a-z][a-z0-9_-]{0,63}$/;
const OPERATOR_ACTION = /^(?:\*|(?:\*|[a-z][a-z0-9-]{0,31}):(?:\*|[a-z][a-z0-9-]{0,31}))$/;
/** A concrete operator action as routes declare it: no wildcards. */
const CONCRETE_OPERATOR_ACTION = /^[a-z][a-z0-9-]{0,31}:[a-z][a-z0-9-]{0,31}$/;
const MAX_RULES_PER_ROLE = 1_000;
const MAX_DESCRIPTION = 500;

/** Throws `ROLE_NAME_INVALID` unless the name is 1–64 of `[a-z0-9_-]`, starting with a letter. */
export function assertRoleName(name: string): void {
  if (!ROLE_NAME.test(name))
    throw new MoatError("ROLE_NAME_INVALID", `Role name '${name}' is not valid; use 1-64 of lower-case letters, digits, _ and -, starting with a letter`, {
      detail: { role: name },
    });
}

/** True for an operator permission pattern: `*`, or `<resource>:<verb>` where either side may be `*`. */
export function isOperatorActionPattern(action: string): boolean {
  return OPERATOR_ACTION.test(action);
}

/** True for a concrete operator action such as `devices:read`. */
export function isOperatorAction(action: string): boolean {
  return CONCRETE_OPERATOR_ACTION.test(action);
}

/**
 * Checks one rule and returns it normalised (operator rules get resource `*`).
 * Throws `POLICY_RULE_INVALID` naming what is wrong.
 */
export function validateRule(rule: Rule): Rule {
  if (rule === null || typeof rule !== "object")
    throw new MoatError("POLICY_RULE_INVALID", "A rule must be an object with effect, action and resource");
  if (rule.effect !== "allow" && rule.effect !== "deny")
    throw new MoatError("POLICY_RULE_INVALID", `Rule effect '${String(rule.effect)}' must be 'allow' or 'deny'`, { detail: { rule } });
  if (typeof rule.action !== "string")
    throw new MoatError("POLICY_RULE_INVALID", "A rule's action must be a string", { detail: { rule } });
  if (isDeviceAction(rule.action)) {
    if (typeof rule.resource !== "string")
      throw new MoatError("POLICY_RULE_INVALID", `A ${rule.action} rule needs a topic filter as resource`, { detail: { rule } });
    parseFilterTemplate(rule.resource);
    return { effect: rule.effect, action: rule.action, resource: rule.resource };
  }
  if (!isOperatorActionPattern(rule.action))
    throw new MoatError(
      "POLICY_RULE_INVALID",
      `Action '${rule.action}' is neither a device action (publish, subscribe, receive) nor an operator permission like 'devices:read', 'devices:*' or '*:read'`,
      { detail: { rule } },
    );
  if (rule.resource !== undefined && rule.resource !== "*")
    throw new MoatError("POLICY_RULE_INVALID", `Operator rule '${rule.action}' takes resource '*', not '${rule.resource}'`, { detail: { rule } });
  return { effect: rule.effect, action: rule.action, resource: "*" };
}

/**
 * Parses the CLI form of a rule: `publish:devices/${device.id}/telemetry/#` (device action, then the topic
 * filter after the first colon) or an operator permission such as `devices:read`.
 */
export function parseRuleSpec(spec: string, effect: Effect): Rule {
  const colon = spec.indexOf(":");
  const head = colon < 0 ? spec : spec.slice(0, colon);
  if (isDeviceAction(head)) {
    if (colon < 0)
      throw new MoatError("POLICY_RULE_INVALID", `Rule '${spec}' needs a topic filter: '${head}:<topic filter>'`, { detail: { spec } });
    return validateRule({ effect, action: head, resource: spec.slice(colon + 1) });
  }
  return validateRule({ effect, action: spec, resource: "*" });
}

/** The CLI form of a rule, the inverse of `parseRuleSpec`. */
export function formatRule(rule: Rule): string {
  return isDeviceAction(rule.action) ? `${rule.effect} ${rule.action}:${rule.resource}` : `${rule.effect} ${rule.action}`;
}

/** Checks a whole role definition; returns a normalised copy. */
export function validateRole(role: RoleDefinition): RoleDefinition {
  assertRoleName(role.name);
  if (!Array.isArray(role.rules))
    throw new MoatError("POLICY_RULE_INVALID", `Role '${role.name}' needs a list of rules`, { detail: { role: role.name } });
  if (role.rules.length > MAX_RULES_PER_ROLE)
    throw new MoatError("POLICY_RULE_INVALID", `Role '${role.name}' has ${role.rules.length} rules; the limit is ${MAX_RULES_PER_ROLE}`, {
      detail: { role: role.name },
    });
  if (role.description !== undefined && (typeof role.description !== "string" || role.description.length > MAX_DESCRIPTION))
    throw new MoatError("POLICY_RULE_INVALID", `Role '${role.name}' description must be text of at most ${MAX_DESCRIPTION} characters`, {
      detail: { role: role.name },
    });
  return {
    name: role.name,
    ...(role.description === undefined ? {} : { description: role.description }),
    rules: role.rules.map(validateRule),
    ...(role.builtin === true ? { builtin: true } : {}),
  };
}
