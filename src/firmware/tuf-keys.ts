import { createHash, createPrivateKey, createPublicKey, randomBytes, sign } from "node:crypto";
import { canonicalize } from "@tufjs/canonical-json";
import { Key, Signature } from "@tufjs/models";
import { MoatError } from "../errors.js";

/** The four top-level TUF roles (TUF spec §2.1). */
export type TufRole = "root" | "targets" | "snapshot" | "timestamp";
export const TUF_ROLES: readonly TufRole[] = ["root", "targets", "snapshot", "timestamp"];

/** Signs canonical TUF metadata bytes. Synchronous because `Metadata.sign` takes a sync callback. */
export interface TufSigner {
  key: Key;
  sign(data: Buffer): Signature;
}

/** Finds the private halves of role keys: in memory for tests, envelope-encrypted in the store for the server. */
export interface TufKeyring {
  /** Returns signers for those of `keyIds` this keyring holds (possibly fewer: offline root keys). */
  signers(keyIds: readonly string[]): Promise<TufSigner[]>;
}

const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");
const SPKI_ED25519_LENGTH = 12;

/** A TUF ed25519 key from its raw public key (keyval.public is hex, TUF spec §4.2). */
export function tufPublicKey(rawPublicHex: string): Key {
  const fields = { keytype: "ed25519", scheme: "ed25519", keyval: { public: rawPublicHex } };
  // The key id is the SHA-256 of the canonical JSON of the key object (TUF spec §4.2).
  const keyID = createHash("sha256").update(canonicalize(fields)).digest("hex");
  return new Key({ keyID, keyType: "ed25519", scheme: "ed25519", keyVal: { public: rawPublicHex } });
}

/** A signer for an ed25519 TUF key held as its 32-byte seed. */
export function tufSignerFromSeed(seed: Uint8Array): TufSigner {
  if (seed.length !== 32) throw new MoatError("FIRMWARE_KEY_MALFORMED", "a TUF ed25519 seed must be 32 bytes");
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: "der", type: "pkcs8" });
  const raw = createPublicKey(privateKey).export({ format: "der", type: "spki" }).subarray(SPKI_ED25519_LENGTH);
  const key = tufPublicKey(raw.toString("hex"));
  return { key, sign: (data) => new Signature({ keyID: key.keyID, sig: sign(null, data, privateKey).toString("hex") }) };
}

/** Generates a fresh ed25519 TUF key; the caller stores the seed (encrypted). */
export function generateTufKey(): { seed: Buffer; signer: TufSigner } {
  const seed = randomBytes(32);
  return { seed, signer: tufSignerFromSeed(seed) };
}

/** A keyring over signers held in memory (tests, and the CLI right after generating keys). */
export class MemoryTufKeyring implements TufKeyring {
  private readonly byId = new Map<string, TufSigner>();
  constructor(signers: Iterable<TufSigner> = []) {
    for (const signer of signers) this.add(signer);
  }
  add(signer: TufSigner): void {
    this.byId.set(signer.key.keyID, signer);
  }
  remove(keyId: string): void {
    this.byId.delete(keyId);
  }
  async signers(keyIds: readonly string[]): Promise<TufSigner[]> {
    return keyIds.flatMap((id) => this.byId.get(id) ?? []);
  }
}
