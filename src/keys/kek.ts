import { createHash, randomBytes } from "node:crypto";
import { aes256GcmOpen, aes256GcmSeal } from "../crypto/index.js";
import { MoatError } from "../errors.js";

/** A key-encryption key: wraps and unwraps data keys. Its bytes never leave the provider. */
export interface Kek {
  /** Stable identifier of the key (not secret), e.g. `sw:<fingerprint>` for a software KEK. */
  readonly id: string;
  readonly version: number;
  wrap(dataKey: Buffer, aad: Buffer): Promise<Buffer>;
  unwrap(wrapped: Buffer, aad: Buffer): Promise<Buffer>;
}

/** One KEK version a provider holds (for `moat keys status`). */
export interface KekVersionInfo {
  id: string;
  version: number;
  /** True for the version that wraps new data keys. */
  current: boolean;
  /** Where it lives, e.g. the KEK file or `pkcs11:<token>/<label>`. Not secret. */
  location: string;
}

/** Where KEKs come from (file, environment, PKCS#11 token). */
export interface KekProvider {
  readonly kind: string;
  /** The KEK that wraps new data keys. */
  current(): Promise<Kek>;
  /** A KEK by id and version, to open older envelopes; throws KEK_MISMATCH when unknown. */
  get(id: string, version: number): Promise<Kek>;
  close?(): Promise<void>;
  // --- rotation (providers that can hold several versions) ---
  /** Creates a new KEK version and makes it current. Absent when the KEK is managed outside Moat. */
  createVersion?(): Promise<Kek>;
  /** Every version the provider holds, oldest first. */
  versions?(): Promise<KekVersionInfo[]>;
  /** Deletes a non-current version; the caller has checked that nothing is wrapped by it. */
  retire?(id: string, version: number): Promise<void>;
  /** Re-reads the key source now (another process may have rotated). */
  refresh?(): Promise<void>;
}

const NONCE = 12;
const TAG = 16;

/** A KEK held in process memory (from the KEK file or MOAT_MASTER_KEY): AES-256-GCM key wrapping. */
export function softwareKek(key: Buffer, source: string, version = 1): Kek {
  if (key.length !== 32) throw new MoatError("KEK_INVALID", `the KEK from ${source} is ${key.length} bytes; it must be 32 bytes (base64 of 32 random bytes)`);
  const secret = Buffer.from(key);
  const id = `sw:${createHash("sha256").update("moat-kek-id").update(secret).digest("hex").slice(0, 16)}`;
  return {
    id,
    version,
    async wrap(dataKey, aad) {
      const nonce = randomBytes(NONCE);
      return Buffer.concat([nonce, aes256GcmSeal(secret, nonce, dataKey, aad)]);
    },
    async unwrap(wrapped, aad) {
      if (wrapped.length < NONCE + TAG + 1) throw new MoatError("ENVELOPE_MALFORMED", "wrapped data key is too short");
      const dataKey = aes256GcmOpen(secret, wrapped.subarray(0, NONCE), wrapped.subarray(NONCE), aad);
      if (!dataKey) throw new MoatError("ENVELOPE_DECRYPT_FAILED", "the data key did not unwrap: wrong KEK or tampered envelope");
      return dataKey;
    },
  };
}

/** A provider over one in-memory KEK. */
export function singleKekProvider(kind: string, kek: Kek): KekProvider {
  return {
    kind,
    current: async () => kek,
    async get(id, version) {
      if (id !== kek.id || version !== kek.version)
        throw new MoatError("KEK_MISMATCH", `this envelope was wrapped by KEK ${id} v${version}, but the configured KEK is ${kek.id} v${kek.version}`);
      return kek;
    },
  };
}
