/**
 * Moat's view of what Mosquitto should hold, computed from the registry and the policy, and the
 * dynamic-security commands that bring Mosquitto from one state to another.
 */
import { aclKey, compileDeviceAcls, sameAcls, type DynsecAcl } from "./acl.js";
import type { DynsecCommand } from "./dynsec-client.js";
import { deviceRoleName, type DesiredClient } from "./dynsec-state.js";
import type { DeviceFacts, DevicePolicy, DeviceSource } from "./ports.js";

/**
 * One device as Mosquitto should hold it. `${cert.cn}` is the device id: Mosquitto takes the user name
 * from the certificate's CN, and Moat's device certificates carry the device id there, so only a
 * certificate naming this device reaches this client.
 */
export function desiredClient(device: DeviceFacts, policy: DevicePolicy, mayConnect: (status: string) => boolean): DesiredClient {
  if (!mayConnect(device.status)) return { deviceId: device.id, enabled: false, acls: [] };
  const subject = { id: device.id, group: device.group, status: device.status, attributes: device.attributes, certCn: device.id, roles: device.role ? [device.role] : [] };
  return { deviceId: device.id, enabled: true, acls: compileDeviceAcls(policy.deviceRules(subject), subject) };
}

/** Every device's desired client, by id. */
export async function desiredState(devices: DeviceSource, policy: DevicePolicy): Promise<Map<string, DesiredClient>> {
  const out = new Map<string, DesiredClient>();
  for await (const page of devices.pages()) for (const device of page) out.set(device.id, desiredClient(device, policy, devices.mayConnect));
  return out;
}

/**
 * The commands that turn `from` into `to` for one device (null = no client). Narrowing comes first:
 * a disable before anything else, removed allows and added denies before added allows, so no command
 * boundary ever grants more than both states.
 */
export function transition(deviceId: string, from: DesiredClient | null, to: DesiredClient | null): DynsecCommand[] {
  const role = deviceRoleName(deviceId);
  if (to === null) return from === null ? [] : [{ command: "deleteClient", username: deviceId }, ...(from.enabled ? [{ command: "deleteRole", rolename: role }] : [])];
  if (from === null) {
    if (!to.enabled) return [{ command: "createClient", username: deviceId, textname: "Moat device" }, { command: "disableClient", username: deviceId }];
    return [
      { command: "createRole", rolename: role, acls: to.acls },
      { command: "createClient", username: deviceId, textname: "Moat device", roles: [{ rolename: role }] },
    ];
  }
  if (from.enabled && !to.enabled)
    return [
      { command: "disableClient", username: deviceId },
      { command: "removeClientRole", username: deviceId, rolename: role },
      { command: "deleteRole", rolename: role },
    ];
  if (!from.enabled && to.enabled)
    return [
      { command: "createRole", rolename: role, acls: to.acls },
      { command: "addClientRole", username: deviceId, rolename: role },
      { command: "enableClient", username: deviceId },
    ];
  if (!to.enabled || sameAcls(from.acls, to.acls)) return [];
  return aclChanges(role, from.acls, to.acls);
}

/** ACL edits of one role, narrowing first. */
export function aclChanges(role: string, from: readonly DynsecAcl[], to: readonly DynsecAcl[]): DynsecCommand[] {
  const want = new Map(to.map((acl) => [aclKey(acl), acl]));
  const have = new Map(from.map((acl) => [aclKey(acl), acl]));
  const remove = (acl: DynsecAcl): DynsecCommand => ({ command: "removeRoleACL", rolename: role, acltype: acl.acltype, topic: acl.topic });
  const add = (acl: DynsecAcl): DynsecCommand => ({ command: "addRoleACL", rolename: role, ...acl });
  const changed = (acl: DynsecAcl) => {
    const other = want.get(aclKey(acl));
    return other === undefined || other.allow !== acl.allow || other.priority !== acl.priority;
  };
  const removed = from.filter(changed);
  const added = to.filter((acl) => {
    const other = have.get(aclKey(acl));
    return other === undefined || other.allow !== acl.allow || other.priority !== acl.priority;
  });
  return [
    ...removed.filter((acl) => acl.allow).map(remove),
    // A changed ACL is removed before it is added again (dynsec keeps one per type and topic).
    ...removed.filter((acl) => !acl.allow && added.some((a) => aclKey(a) === aclKey(acl))).map(remove),
    ...added.filter((acl) => !acl.allow).map(add),
    ...added.filter((acl) => acl.allow).map(add),
    ...removed.filter((acl) => !acl.allow && !added.some((a) => aclKey(a) === aclKey(acl))).map(remove),
  ];
}
