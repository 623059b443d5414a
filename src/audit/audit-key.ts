import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { MoatError } from "../errors.js";
import type { AuditKeyRecord, AuditKeyStore, SecretSealer } from "./ports.js";
import { formatVerifierKey, noteKeyId, type NoteSigner } from "./signed-note.js";

/** The installation's one audit key (rotation would add ids; checkpoints name the key by its id). */
export const AUDIT_KEY_ID = "audit-1";

/** The envelope AAD binding the sealed audit key to its row. */
export function auditKeyAad(id: string): string {
  return `audit-key:${id}`;
}

/** An Ed25519 signer whose private half stays where it lives (sealed in the store or in a token). */
export interface AuditSigner extends NoteSigner {
  /** The signed-note key id (4 bytes). */
  readonly keyId: Buffer;
  /** `store (sealed under the KEK)` or `pkcs11:<token>/<label>`. */
  readonly location: string;
  /** `<name>+<hex key id>+<base64(0x01 || public key)>`, for offline verification. */
  readonly verifierKey: string;
}

/** Ed25519 keys inside a PKCS#11 token (keys.provider=pkcs11). */
export interface TokenEd25519Keys {
  generate(purpose: string): { publicKey: Buffer; location: string };
  signer(location: string): { publicKey: Buffer; sign(message: Buffer): Buffer };
}

/**
 * The audit key: Ed25519 (signed-note key type 0x01). Created once per installation, in the PKCS#11
 * token when one is configured, otherwise sealed under the KEK. It signs checkpoints and, through
 * `signer()`, anything else that must be attributable to this installation (signed reports).
 */
export class AuditKeys {
  private cached: AuditSigner | null = null;

  constructor(
    private readonly store: AuditKeyStore,
    private readonly sealer: SecretSealer,
    /** The signed-note key name: the log's origin. */
    private readonly name: string,
    private readonly token?: TokenEd25519Keys,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Creates the key unless the installation has one; safe to race from several processes. */
  async ensure(): Promise<{ created: boolean; location: string }> {
    const existing = await this.store.get(AUDIT_KEY_ID);
    if (existing) return { created: false, location: describeLocation(existing) };
    let record: AuditKeyRecord;
    if (this.token) {
      const generated = this.token.generate("audit");
      record = { id: AUDIT_KEY_ID, name: this.name, publicKey: generated.publicKey, sealedPrivateKey: null, location: generated.location, createdAt: this.clock().toISOString() };
    } else {
      const pair = generateKeyPairSync("ed25519");
      const der = pair.privateKey.export({ format: "der", type: "pkcs8" });
      record = {
        id: AUDIT_KEY_ID,
        name: this.name,
        publicKey: rawPublicKey(pair.publicKey),
        sealedPrivateKey: await this.sealer.seal(der, auditKeyAad(AUDIT_KEY_ID)),
        location: null,
        createdAt: this.clock().toISOString(),
      };
      der.fill(0);
    }
    const created = await this.store.insert(record);
    const kept = created ? record : await this.store.get(AUDIT_KEY_ID);
    return { created, location: describeLocation(kept ?? record) };
  }

  /** The public half in signed-note verifier form; needs neither the KEK nor the token. */
  async verifierKey(): Promise<string> {
    const record = await this.record();
    return formatVerifierKey(record.name, record.publicKey);
  }

  /** Where the private key lives, for status output. */
  async location(): Promise<string> {
    return describeLocation(await this.record());
  }

  async signer(): Promise<AuditSigner> {
    if (this.cached) return this.cached;
    const record = await this.record();
    let signFn: (message: Buffer) => Buffer;
    if (record.location) {
      if (!this.token) throw new MoatError("AUDIT_KEY_MISSING", `the audit key lives in ${record.location}, but keys.provider is not pkcs11`);
      const tokenSigner = this.token.signer(record.location);
      if (!tokenSigner.publicKey.equals(record.publicKey)) throw new MoatError("AUDIT_KEY_MISSING", `the key at ${record.location} is not the recorded audit key`);
      signFn = (message) => tokenSigner.sign(message);
    } else {
      if (!record.sealedPrivateKey) throw new MoatError("AUDIT_KEY_MISSING", "the audit key record holds neither a sealed key nor a token location");
      const der = await this.sealer.open(record.sealedPrivateKey, auditKeyAad(record.id));
      const privateKey: KeyObject = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
      der.fill(0);
      signFn = (message) => sign(null, message, privateKey);
    }
    const signer: AuditSigner = {
      name: record.name,
      publicKey: record.publicKey,
      keyId: noteKeyId(record.name, record.publicKey),
      location: describeLocation(record),
      verifierKey: formatVerifierKey(record.name, record.publicKey),
      sign: async (message) => signFn(message),
    };
    this.cached = signer;
    return signer;
  }

  private async record(): Promise<AuditKeyRecord> {
    const record = await this.store.get(AUDIT_KEY_ID);
    if (!record) throw new MoatError("AUDIT_KEY_MISSING", "this installation has no audit key yet: run moat migrate (or moat serve) once to create it");
    return record;
  }
}

function describeLocation(record: AuditKeyRecord): string {
  return record.location ?? "store (sealed under the KEK)";
}

export function rawPublicKey(publicKey: KeyObject): Buffer {
  return Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url");
}
