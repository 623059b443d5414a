import { createCipheriv, createDecipheriv } from "node:crypto";
import { A256GCM_IV_BYTES, A256GCM_KEY_BYTES, A256GCM_TAG_BYTES } from "./cose-constants.js";
import { MoatError } from "../errors.js";

/** AES-256-GCM encryption; returns ciphertext || tag (the COSE layout, RFC 9053 §4.1). */
export function aes256GcmSeal(key: Uint8Array, iv: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Buffer {
  checkKeyAndIv(key, iv);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** AES-256-GCM decryption of ciphertext || tag; returns null when the tag does not verify. */
export function aes256GcmOpen(key: Uint8Array, iv: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Buffer | null {
  checkKeyAndIv(key, iv);
  if (sealed.length < A256GCM_TAG_BYTES) return null;
  const split = sealed.length - A256GCM_TAG_BYTES;
  const decipher = createDecipheriv("aes-256-gcm", key, iv, { authTagLength: A256GCM_TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(split));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, split)), decipher.final()]);
  } catch {
    return null;
  }
}

function checkKeyAndIv(key: Uint8Array, iv: Uint8Array): void {
  if (key.length !== A256GCM_KEY_BYTES) throw new MoatError("CRYPTO_KEY_INVALID", `an A256GCM key is ${A256GCM_KEY_BYTES} bytes, got ${key.length}`);
  if (iv.length !== A256GCM_IV_BYTES) throw new MoatError("COSE_MALFORMED", `an A256GCM IV is ${A256GCM_IV_BYTES} bytes, got ${iv.length}`);
}
