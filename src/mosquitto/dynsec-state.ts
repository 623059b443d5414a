/**
 * The dynamic-security state Moat wants Mosquitto to hold: Moat's admin account, deny-by-default access,
 * and for every device a client named by its id with one role of its own holding its compiled ACLs.
 * Devices that may not connect stay as disabled clients without a role, so Mosquitto can still kick
 * them by name when they reconnect with a certificate that is not revoked.
 */
import { readFileSync } from "node:fs";
import type { DynsecAcl } from "./acl.js";

export const ADMIN_USERNAME = "moat-admin";
const ADMIN_ROLE = "moat-admin";
/** Prefix of the per-device roles; other roles in the state are not Moat's and count as drift. */
export const DEVICE_ROLE_PREFIX = "moat-device:";

export function deviceRoleName(deviceId: string): string {
  return DEVICE_ROLE_PREFIX + deviceId;
}

/** Deny unless an ACL allows: publish, subscribe and delivery alike (Moat's "no rule means deny"). */
export function defaultAcl() {
  return { publishClientSend: false, publishClientReceive: false, subscribe: false, unsubscribe: true };
}

/** The control topics and nothing else: the admin account never sees device traffic. */
export function adminRole() {
  const topic = "$CONTROL/dynamic-security/#";
  return {
    rolename: ADMIN_ROLE,
    acls: [
      { acltype: "publishClientSend", topic, priority: 0, allow: true },
      { acltype: "publishClientReceive", topic, priority: 0, allow: true },
      { acltype: "subscribePattern", topic, priority: 0, allow: true },
    ],
  };
}

/** One device as Mosquitto should hold it. */
export interface DesiredClient {
  deviceId: string;
  /** False for a device whose status may not hold a session (suspended, pending, decommissioned). */
  enabled: boolean;
  /** The device's compiled ACLs; empty when disabled. */
  acls: DynsecAcl[];
}

interface StateFile {
  defaultACLAccess?: unknown;
  clients?: Array<Record<string, unknown>>;
  groups?: unknown[];
  roles?: Array<Record<string, unknown>>;
}

/**
 * The state file to start Mosquitto with: the admin account (with its password hash) kept from the file
 * as it is, everything else replaced by the desired devices. Written before Mosquitto starts, so the
 * device listener never accepts a connection before every device's permissions are in place.
 */
export function renderState(current: string, clients: Iterable<DesiredClient>): string {
  const state = JSON.parse(current) as StateFile;
  const admin = (state.clients ?? []).find((c) => c.username === ADMIN_USERNAME);
  if (!admin) throw new Error(`the state file has no ${ADMIN_USERNAME} account`);
  const outClients: Array<Record<string, unknown>> = [{ ...admin, roles: [{ rolename: ADMIN_ROLE }] }];
  const outRoles: Array<Record<string, unknown>> = [adminRole()];
  for (const client of clients) {
    const entry: Record<string, unknown> = { username: client.deviceId, textname: "Moat device", roles: client.enabled ? [{ rolename: deviceRoleName(client.deviceId) }] : [] };
    if (!client.enabled) entry.disabled = true;
    outClients.push(entry);
    if (client.enabled) outRoles.push({ rolename: deviceRoleName(client.deviceId), acls: client.acls });
  }
  return JSON.stringify({ defaultACLAccess: defaultAcl(), clients: outClients, groups: [], roles: outRoles }) + "\n";
}

export function readStateFile(path: string): string {
  return readFileSync(path, "utf8");
}
