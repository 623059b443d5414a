/**
 * The access-control model: roles hold allow/deny rules; a rule names an action and a resource.
 *
 * Device actions (`publish`, `subscribe`, `receive`) take an MQTT topic filter as resource, which may
 * contain `${…}` variables. Operator actions are the API's own `<resource>:<verb>` permissions
 * (`devices:read`, `certs:revoke`) with `*` wildcards on either side; their resource is always `*`.
 */

/** What a rule does when it matches. Explicit deny wins over any allow; no match means deny. */
export type Effect = "allow" | "deny";

/** The MQTT actions a device performs; `receive` is the delivery of a message to the device. */
export type DeviceAction = "publish" | "subscribe" | "receive";

export const DEVICE_ACTIONS: readonly DeviceAction[] = ["publish", "subscribe", "receive"];

/** One rule as stored and shown to people. */
export interface Rule {
  effect: Effect;
  /** A device action, or an operator permission pattern such as `devices:read`, `devices:*`, `*:read`, `*`. */
  action: string;
  /** A topic filter for device actions; `*` for operator actions. */
  resource: string;
}

/** A role: a named set of rules. */
export interface RoleDefinition {
  name: string;
  description?: string;
  rules: readonly Rule[];
  /** Built-in roles are seeded by `moat init` and cannot be changed or deleted. */
  builtin?: boolean;
}

/** What a role is given to. */
export type AssignmentKind = "device" | "group" | "token";

export interface Assignment {
  role: string;
  kind: AssignmentKind;
  /** A device id, a group name, or an operator token name. */
  target: string;
}

/** The device a decision is about, with the values topic variables are filled from. */
export interface DeviceSubject {
  id: string;
  group?: string | null;
  /** Device status; `quarantined` overrides every assignment with the `quarantine` role. */
  status?: string;
  /** Values for `${device.attr.NAME}`. */
  attributes?: Readonly<Record<string, string>>;
  /** Common name of the client certificate the device connected with, for `${cert.cn}`. */
  certCn?: string | null;
  /**
   * Roles the device holds by its registry record (its registry role, read with the device), listed first
   * and united with the compiled assignments. A quarantined device still gets only `quarantine`.
   */
  roles?: readonly string[];
}

/** The rule that decided, for explanations (`moat policy check`). */
export interface DecidingRule extends Rule {
  role: string;
  /** Position of the rule inside its role. */
  index: number;
}

/** Why a decision came out as it did. */
export type DecisionReason = "rule" | "no-matching-rule" | "invalid-topic" | "no-roles";

export interface Decision {
  allow: boolean;
  /** The deciding rule, or null for a default deny. */
  rule: DecidingRule | null;
  reason: DecisionReason;
  /** The roles that were consulted (after the quarantine override). */
  roles: readonly string[];
}

/** The name of the role that replaces every other role of a quarantined device. */
export const QUARANTINE_ROLE = "quarantine";
/** The device status that triggers the quarantine override. */
export const QUARANTINED_STATUS = "quarantined";

export function isDeviceAction(action: string): action is DeviceAction {
  return action === "publish" || action === "subscribe" || action === "receive";
}
