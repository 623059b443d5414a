/** The roles `moat init` seeds. They are marked built-in: they can be assigned but not changed or deleted. */
import type { RoleDefinition } from "./model.js";

/** The role new devices get: their own telemetry, events, status, commands and OTA offers, nothing else. */
export const DEVICE_ROLE: RoleDefinition = {
  name: "device",
  description: "Default device role: publish own telemetry, events and status; subscribe to and receive own commands and OTA offers",
  builtin: true,
  rules: [
    { effect: "allow", action: "publish", resource: "devices/${device.id}/telemetry/#" },
    { effect: "allow", action: "publish", resource: "devices/${device.id}/events/#" },
    { effect: "allow", action: "subscribe", resource: "devices/${device.id}/commands/#" },
    { effect: "allow", action: "receive", resource: "devices/${device.id}/commands/#" },
    // OTA (docs/firmware.md), appended so earlier rule indices stay stable: progress reports on the
    // status topic (quarantined devices keep only this), offers and aborts published by Moat itself.
    { effect: "allow", action: "publish", resource: "devices/${device.id}/status" },
    { effect: "allow", action: "subscribe", resource: "devices/${device.id}/ota" },
    { effect: "allow", action: "receive", resource: "devices/${device.id}/ota" },
  ],
};

/** The only role a quarantined device has: it may report its status and nothing more. */
export const QUARANTINE_ROLE_DEFINITION: RoleDefinition = {
  name: "quarantine",
  description: "Replaces every role of a quarantined device: publish own status only",
  builtin: true,
  rules: [{ effect: "allow", action: "publish", resource: "devices/${device.id}/status" }],
};

export const ADMIN_ROLE: RoleDefinition = {
  name: "admin",
  description: "Operators with every permission",
  builtin: true,
  rules: [{ effect: "allow", action: "*", resource: "*" }],
};

/** Day-to-day fleet work: read everything, run the fleet; no access-control, token or key management. */
export const OPERATOR_ROLE: RoleDefinition = {
  name: "operator",
  description: "Fleet operations: read everything, manage devices, certificates, firmware, OTA, scans and segments",
  builtin: true,
  rules: [
    { effect: "allow", action: "*:read", resource: "*" },
    { effect: "allow", action: "devices:*", resource: "*" },
    { effect: "allow", action: "certs:*", resource: "*" },
    { effect: "allow", action: "firmware:*", resource: "*" },
    { effect: "allow", action: "ota:*", resource: "*" },
    { effect: "allow", action: "scans:*", resource: "*" },
    { effect: "allow", action: "segments:*", resource: "*" },
  ],
};

/** Reads everything, changes nothing. */
export const AUDITOR_ROLE: RoleDefinition = {
  name: "auditor",
  description: "Read-only access to everything, including the audit log",
  builtin: true,
  rules: [{ effect: "allow", action: "*:read", resource: "*" }],
};

/** Every built-in role, in seeding order. */
export const BUILTIN_ROLES: readonly RoleDefinition[] = [DEVICE_ROLE, QUARANTINE_ROLE_DEFINITION, ADMIN_ROLE, OPERATOR_ROLE, AUDITOR_ROLE];

/** The role a new device gets unless told otherwise. */
export const DEFAULT_DEVICE_ROLE = DEVICE_ROLE.name;

export function isBuiltinRoleName(name: string): boolean {
  return BUILTIN_ROLES.some((role) => role.name === name);
}
