import { timingSafeEqual } from "node:crypto";
import { A256GCM_KEY_BYTES } from "./cose-constants.js";
import { MoatError } from "../errors.js";

/** Looks a symmetric content key up by its COSE key id. */
export interface SymmetricKeyResolver {
  get(kid: Uint8Array): Buffer | undefined;
}

/** A key id as bytes: strings are UTF-8 (COSE `kid` is a bstr, RFC 9052 §3.1). */
export function kidBytes(kid: Uint8Array | string): Buffer {
  const bytes = typeof kid === "string" ? Buffer.from(kid, "utf8") : Buffer.from(kid);
  if (bytes.length === 0 || bytes.length > 255) throw new MoatError("CRYPTO_KEY_INVALID", `a key id is 1 to 255 bytes, got ${bytes.length}`);
  return bytes;
}

/**
 * The A256GCM keys one party holds, by key id. Rotation by key id: `add` a new key as primary,
 * senders switch to it at once, receivers still open messages under older ids until `retire`.
 */
export class Keyring implements SymmetricKeyResolver {
  private readonly keys = new Map<string, { kid: Buffer; key: Buffer }>();
  private primaryId: string | undefined;

  /** Adds a key; the first one added, or any added with `primary: true`, becomes the sending key. */
  add(kid: Uint8Array | string, key: Uint8Array, options: { primary?: boolean } = {}): this {
    const id = kidBytes(kid);
    if (key.length !== A256GCM_KEY_BYTES) throw new MoatError("CRYPTO_KEY_INVALID", `key '${id.toString("hex")}' is ${key.length} bytes; A256GCM needs ${A256GCM_KEY_BYTES}`);
    const hex = id.toString("hex");
    const existing = this.keys.get(hex);
    if (existing && !(existing.key.length === key.length && timingSafeEqual(existing.key, key)))
      throw new MoatError("CRYPTO_KEY_INVALID", `key id '${id.toString("hex")}' is already bound to a different key; use a new key id to rotate`);
    this.keys.set(hex, { kid: id, key: Buffer.from(key) });
    if (options.primary || this.primaryId === undefined) this.primaryId = hex;
    return this;
  }

  get(kid: Uint8Array): Buffer | undefined {
    return this.keys.get(Buffer.from(kid).toString("hex"))?.key;
  }

  /** The key new messages are sealed with. */
  primary(): { kid: Buffer; key: Buffer } {
    const entry = this.primaryId === undefined ? undefined : this.keys.get(this.primaryId);
    if (!entry) throw new MoatError("COSE_KID_UNKNOWN", "the keyring is empty: add a key before sealing");
    return entry;
  }

  /** Removes a key id; messages under it no longer open. The primary key cannot be retired. */
  retire(kid: Uint8Array | string): boolean {
    const hex = kidBytes(kid).toString("hex");
    if (hex === this.primaryId) throw new MoatError("CRYPTO_KEY_INVALID", "the primary key cannot be retired; add a new primary first");
    const entry = this.keys.get(hex);
    entry?.key.fill(0);
    return this.keys.delete(hex);
  }

  kids(): Buffer[] {
    return [...this.keys.values()].map((entry) => entry.kid);
  }
}
