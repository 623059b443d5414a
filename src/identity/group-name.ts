/**
 * The group-name rule. A group is a name on devices (`devices.device_group`); its settings
 * (group-settings.ts), role assignments and OTA campaigns address it by that name, so every side
 * checks it the same way.
 */
import { MoatError } from "../errors.js";

export const GROUP_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isGroupName(name: unknown): name is string {
  return typeof name === "string" && GROUP_NAME_PATTERN.test(name);
}

export function assertGroupName(name: unknown): asserts name is string {
  if (!isGroupName(name)) throw new MoatError("VALIDATION_FAILED", `group ${JSON.stringify(name)} is not valid: 1-64 of A-Z a-z 0-9 . _ -`);
}
