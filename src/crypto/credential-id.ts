/**
 * Stable, non-secret names for device credentials. The identity domain stores credentials under these
 * ids and the broker reports which one verified a token, so both sides must derive them the same way.
 */
import { createHash, type KeyObject } from "node:crypto";

/** `secret:` and the first 16 hex digits of the secret's SHA-256; reveals nothing usable about it. */
export function secretId(secret: Uint8Array): string {
  return "secret:" + createHash("sha256").update(secret).digest("hex").slice(0, 16);
}

/** `key:` and the first 16 hex digits of the SHA-256 over the public key's SPKI DER. */
export function publicKeyId(key: KeyObject): string {
  return "key:" + createHash("sha256").update(key.export({ format: "der", type: "spki" })).digest("hex").slice(0, 16);
}
