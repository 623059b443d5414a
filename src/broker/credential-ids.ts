/** The ids of a device's current JWT credentials, to tell whether a live session's credential still holds. */
import { createPublicKey } from "node:crypto";
import { publicKeyId, secretId } from "../crypto/index.js";
import type { DeviceRecord } from "./ports.js";

/** Ids of the device's public keys, as `verifyDeviceToken` reports them. */
export function publicKeyIdsOf(device: DeviceRecord): Set<string> {
  const ids = new Set<string>();
  for (const key of device.publicKeys) {
    if (key.id) {
      ids.add(key.id);
      continue;
    }
    try {
      ids.add(publicKeyId(createPublicKey(key.pem)));
    } catch {
      // An unreadable key verifies nothing; leave it out.
    }
  }
  return ids;
}

/** Ids of the device's secrets still valid at `now`, with the time each stops (Infinity for the current one). */
export function secretIdsOf(device: DeviceRecord, now: number): Map<string, number> {
  const ids = new Map<string, number>();
  for (const { secret, notAfter } of device.hmacSecrets) {
    const end = notAfter === null ? Infinity : Date.parse(notAfter);
    if (end > now) ids.set(secretId(secret), end);
  }
  return ids;
}
