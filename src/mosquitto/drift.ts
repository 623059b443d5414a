/**
 * Drift: where the clients and roles Mosquitto holds differ from Moat's view, and the commands that fix
 * it. `moat mosquitto status` shows it; `moat serve` fixes it after every (re)start of Mosquitto.
 */
import { MoatError } from "../errors.js";
import { sortAcls, sameAcls, type DynsecAcl } from "./acl.js";
import { transition } from "./desired.js";
import type { DynsecAdmin, DynsecCommand } from "./dynsec-client.js";
import { ADMIN_USERNAME, DEVICE_ROLE_PREFIX, defaultAcl, deviceRoleName, type DesiredClient } from "./dynsec-state.js";

/** What Mosquitto holds, as far as Moat cares. */
export interface ActualState {
  clients: Map<string, { disabled: boolean; roles: string[] }>;
  roles: Map<string, DynsecAcl[]>;
  defaultAcl: Record<string, boolean>;
}

export interface DriftReport {
  /** True when Mosquitto holds exactly what Moat wants. */
  inSync: boolean;
  devices: number;
  /** Devices Moat has that Mosquitto lacks. */
  missingClients: string[];
  /** Clients Mosquitto has that are no Moat device (the admin account aside). */
  extraClients: string[];
  /** Clients whose enabled state or roles differ. */
  differingClients: { deviceId: string; want: { enabled: boolean; roles: string[] }; have: { enabled: boolean; roles: string[] } }[];
  /** Device roles whose ACLs differ from the compiled policy. */
  differingRoles: { rolename: string; missing: DynsecAcl[]; extra: DynsecAcl[] }[];
  /** Roles that belong to no device Moat knows. */
  extraRoles: string[];
  /** Default access that is not deny-by-default. */
  defaultAclDiffers: boolean;
}

export async function readActual(admin: DynsecAdmin): Promise<ActualState> {
  const [clients, roles, access] = await admin.runOrThrow([
    { command: "listClients", verbose: true, count: -1 },
    { command: "listRoles", verbose: true, count: -1 },
    { command: "getDefaultACLAccess" },
  ]);
  const out: ActualState = { clients: new Map(), roles: new Map(), defaultAcl: {} };
  for (const client of (clients!.data?.clients ?? []) as Array<{ username: string; disabled?: boolean; roles?: { rolename: string }[] }>)
    out.clients.set(client.username, { disabled: client.disabled === true, roles: (client.roles ?? []).map((r) => r.rolename).sort() });
  for (const role of (roles!.data?.roles ?? []) as Array<{ rolename: string; acls?: DynsecAcl[] }>)
    out.roles.set(role.rolename, sortAcls((role.acls ?? []).map((a) => ({ acltype: a.acltype, topic: a.topic, priority: a.priority, allow: a.allow }))));
  for (const entry of (access!.data?.acls ?? []) as Array<{ acltype: string; allow: boolean }>) out.defaultAcl[entry.acltype] = entry.allow;
  return out;
}

export function compareState(desired: ReadonlyMap<string, DesiredClient>, actual: ActualState): DriftReport {
  const report: DriftReport = { inSync: true, devices: desired.size, missingClients: [], extraClients: [], differingClients: [], differingRoles: [], extraRoles: [], defaultAclDiffers: false };
  for (const [id, want] of desired) {
    const have = actual.clients.get(id);
    if (!have) {
      report.missingClients.push(id);
      continue;
    }
    const wantRoles = want.enabled ? [deviceRoleName(id)] : [];
    if (have.disabled === want.enabled || have.roles.join(",") !== wantRoles.join(","))
      report.differingClients.push({ deviceId: id, want: { enabled: want.enabled, roles: wantRoles }, have: { enabled: !have.disabled, roles: have.roles } });
    if (!want.enabled) continue;
    const acls = actual.roles.get(deviceRoleName(id));
    if (!acls || !sameAcls(acls, want.acls)) {
      const key = (a: DynsecAcl) => `${a.acltype} ${a.topic} ${a.allow} ${a.priority}`;
      const haveKeys = new Set((acls ?? []).map(key));
      const wantKeys = new Set(want.acls.map(key));
      report.differingRoles.push({ rolename: deviceRoleName(id), missing: want.acls.filter((a) => !haveKeys.has(key(a))), extra: (acls ?? []).filter((a) => !wantKeys.has(key(a))) });
    }
  }
  for (const username of actual.clients.keys()) if (username !== ADMIN_USERNAME && !desired.has(username)) report.extraClients.push(username);
  for (const rolename of actual.roles.keys()) {
    if (rolename === "moat-admin") continue;
    const owner = rolename.startsWith(DEVICE_ROLE_PREFIX) ? desired.get(rolename.slice(DEVICE_ROLE_PREFIX.length)) : undefined;
    if (!owner || !owner.enabled) report.extraRoles.push(rolename);
  }
  const want = defaultAcl() as Record<string, boolean>;
  report.defaultAclDiffers = Object.entries(want).some(([type, allow]) => actual.defaultAcl[type] !== allow);
  report.inSync =
    report.missingClients.length + report.extraClients.length + report.differingClients.length + report.differingRoles.length + report.extraRoles.length === 0 && !report.defaultAclDiffers;
  return report;
}

/**
 * The commands that make Mosquitto match Moat's view: foreign clients and roles removed, every device
 * client rebuilt from what Mosquitto holds now.
 */
export function fixCommands(desired: ReadonlyMap<string, DesiredClient>, actual: ActualState, report: DriftReport): DynsecCommand[] {
  const commands: DynsecCommand[] = [];
  if (report.defaultAclDiffers) commands.push({ command: "setDefaultACLAccess", acls: Object.entries(defaultAcl()).map(([acltype, allow]) => ({ acltype, allow })) });
  // Foreign clients are disabled before removal, so a session they hold is closed as well.
  for (const username of report.extraClients) commands.push({ command: "disableClient", username }, { command: "deleteClient", username });
  for (const rolename of report.extraRoles) commands.push({ command: "deleteRole", rolename });
  const touched = new Set([...report.missingClients, ...report.differingClients.map((c) => c.deviceId), ...report.differingRoles.map((r) => r.rolename.slice(DEVICE_ROLE_PREFIX.length))]);
  for (const id of touched) {
    const want = desired.get(id)!;
    const have = actual.clients.get(id);
    const role = deviceRoleName(id);
    if (!have) {
      // A role left behind without its client is replaced.
      if (actual.roles.has(role) && !report.extraRoles.includes(role)) commands.push({ command: "deleteRole", rolename: role });
      commands.push(...transition(id, null, want));
      continue;
    }
    // Rebuild: the client loses every role, the device role is rewritten, then it gets what it should have.
    if (!want.enabled) {
      commands.push({ command: "disableClient", username: id });
      for (const other of have.roles) commands.push({ command: "removeClientRole", username: id, rolename: other });
      if (actual.roles.has(role) && !report.extraRoles.includes(role)) commands.push({ command: "deleteRole", rolename: role });
      continue;
    }
    for (const other of have.roles) if (other !== role) commands.push({ command: "removeClientRole", username: id, rolename: other });
    if (actual.roles.has(role)) commands.push({ command: "deleteRole", rolename: role });
    commands.push({ command: "createRole", rolename: role, acls: want.acls }, { command: "addClientRole", username: id, rolename: role });
    if (have.disabled) commands.push({ command: "enableClient", username: id });
  }
  return commands;
}

/** Reads, compares and (with `fix`) repairs; returns the report from before the repair. */
export async function checkDrift(admin: DynsecAdmin, desired: ReadonlyMap<string, DesiredClient>, fix: boolean): Promise<{ report: DriftReport; fixed: number }> {
  const actual = await readActual(admin);
  const report = compareState(desired, actual);
  if (!fix || report.inSync) return { report, fixed: 0 };
  const commands = fixCommands(desired, actual, report);
  const answers = await admin.run(commands);
  const failed = answers.filter((a) => a.error !== undefined);
  if (failed.length > 0)
    throw new MoatError("MOSQUITTO_ADMIN_FAILED", `Mosquitto refused ${failed.length} of ${commands.length} repair commands (first: ${failed[0]!.command}: ${failed[0]!.error})`, {
      detail: { failed: failed.slice(0, 10) },
    });
  return { report, fixed: commands.length };
}
