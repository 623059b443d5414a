/**
 * The device-id rule. A device id is also the certificate CN, the MQTT client id and user name, and a
 * topic variable, so it is one short token of URL- and topic-safe characters (no `/`, `+`, `#`).
 */
import { MoatError } from "../errors.js";

export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isDeviceId(id: unknown): id is string {
  return typeof id === "string" && DEVICE_ID_PATTERN.test(id);
}

export function assertDeviceId(id: unknown): asserts id is string {
  if (!isDeviceId(id))
    throw new MoatError("DEVICE_ID_INVALID", `device id ${JSON.stringify(id)} is not valid: use 1-128 of A-Z a-z 0-9 . _ - starting with a letter or digit`);
}
