import { MoatError } from "../errors.js";
import { certifySigningKey } from "./key-certificate.js";
import { buildManifest, type ManifestFacts } from "./manifest-builder.js";
import { signManifest, type SignedManifest } from "./manifest.js";
import type { FirmwareKeyPurpose, FirmwareKeyRecord, FirmwareStore, SecretSealer, TokenSigningKeys } from "./ports.js";
import { firmwarePublicKey, type FirmwarePublicKey } from "./public-key.js";
import { signRevocationList, type RevokedKey } from "./revocation-list.js";
import { verifyFirmware, type SecureBootResult } from "./secure-boot-verifier.js";
import { assertSignatureAlgorithm, generateKeyPair, publicKeyOf, type SignatureAlgorithm } from "./signature-algorithms.js";
import { memorySigner, type DocumentSigner, type SignedDocument } from "./signed-document.js";
import type { ImageSource } from "./image-digest.js";

const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const DAY = 86_400_000;

/** The envelope AAD binding a sealed firmware key to its row. */
export function firmwareKeyAad(name: string): string {
  return `firmware-key:${name}`;
}

export interface FirmwareKeyView {
  name: string;
  purpose: FirmwareKeyPurpose;
  alg: SignatureAlgorithm;
  keyId: string;
  issuer: string | null;
  notBefore: string | null;
  notAfter: string | null;
  offline: boolean;
  /** `pkcs11:<token>/<label>` when the private key lives in the token; null when sealed here or offline. */
  location: string | null;
  revokedAt: string | null;
  revocationReason: string | null;
  createdAt: string;
}

/** The algorithms a PKCS#11 3.0 token signs with (CKM_EDDSA, CKM_ECDSA); it has no ML-DSA mechanism. */
const TOKEN_ALGORITHMS: readonly SignatureAlgorithm[] = ["ed25519", "ecdsa-p256"];

/**
 * Firmware root and signing keys. With a token (keys.provider=pkcs11), Ed25519 and P-256 keys are
 * generated in it, non-extractable, and sign there; the store keeps only their location. Every other
 * private key is stored sealed by the envelope (AES-256-GCM under the KEK, aad `firmware-key:<name>`),
 * which includes hybrid keys: the token has no ML-DSA. A root key may instead be kept offline, in which
 * case the operator supplies it for the rare certify/revoke operations.
 */
export class FirmwareKeyService {
  constructor(
    private readonly store: FirmwareStore,
    private readonly sealer: SecretSealer,
    private readonly token?: TokenSigningKeys,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Creates the root firmware key. With `offline`, the private key is returned once and not stored. */
  async createRoot(input: { name?: string; alg?: SignatureAlgorithm; offline?: boolean; actor: string }): Promise<{ key: FirmwareKeyView; offlinePrivateKey?: Buffer }> {
    const name = checkName(input.name ?? "root");
    const alg = assertSignatureAlgorithm(input.alg ?? "hybrid-ed25519-mldsa65");
    if (await this.store.keys.get(name)) throw new MoatError("FIRMWARE_KEY_EXISTS", `a firmware key named ${name} already exists`);
    const kept = input.offline ? undefined : await this.newPrivateKey(name, "root", alg);
    const pair = kept ? undefined : generateKeyPair(alg);
    const key = firmwarePublicKey(alg, kept?.publicKey ?? pair!.publicKey);
    const record: FirmwareKeyRecord = { ...blank(name, "root", alg, key, this.clock()), ...kept?.stored };
    await this.store.transact(async (uow) => {
      if (await uow.keys.get(name)) throw new MoatError("FIRMWARE_KEY_EXISTS", `a firmware key named ${name} already exists`);
      await uow.keys.insert(record);
      await uow.events.append({ type: "firmware.key.created", severity: "info", actor: input.actor, subject: name, data: { purpose: "root", alg, keyId: key.keyId, offline: !!input.offline } });
    });
    return { key: view(record), ...(pair ? { offlinePrivateKey: pair.privateKey } : {}) };
  }

  /**
   * Generates a signing key and has the root certify it for `validDays`. Creates an online root
   * first when none exists, so `moat firmware keygen` works on a fresh installation.
   */
  async generateSigningKey(input: { name?: string; alg?: SignatureAlgorithm; validDays?: number; root?: string; rootPrivateKey?: Buffer; actor: string }): Promise<FirmwareKeyView> {
    const alg = assertSignatureAlgorithm(input.alg ?? "ed25519");
    const rootName = input.root ?? "root";
    if (!(await this.store.keys.get(rootName)) && rootName === "root") await this.createRoot({ actor: input.actor });
    const root = await this.rootSigner(rootName, input.rootPrivateKey);
    const now = this.clock();
    const name = checkName(input.name ?? `signing-${now.toISOString().slice(0, 10)}-${alg}`);
    const validDays = input.validDays ?? 365;
    if (!Number.isInteger(validDays) || validDays < 1 || validDays > 3650) throw new MoatError("VALIDATION_FAILED", "validity must be 1-3650 days");
    // Checked before generating too, so a taken name leaves no unused key in the token; the transaction checks again.
    if (await this.store.keys.get(name)) throw new MoatError("FIRMWARE_KEY_EXISTS", `a firmware key named ${name} already exists`);
    const kept = await this.newPrivateKey(name, "signing", alg);
    const key = firmwarePublicKey(alg, kept.publicKey);
    const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 60_000);
    const notAfter = new Date(notBefore.getTime() + validDays * DAY);
    const certificate = await certifySigningKey(root.signer, key, { name, notBefore, notAfter });
    const record: FirmwareKeyRecord = {
      ...blank(name, "signing", alg, key, now),
      ...kept.stored,
      certificate: JSON.stringify(certificate),
      issuer: rootName,
      notBefore: notBefore.toISOString(),
      notAfter: notAfter.toISOString(),
    };
    await this.store.transact(async (uow) => {
      if (await uow.keys.get(name)) throw new MoatError("FIRMWARE_KEY_EXISTS", `a firmware key named ${name} already exists`);
      await uow.keys.insert(record);
      await uow.events.append({
        type: "firmware.key.created",
        severity: "info",
        actor: input.actor,
        subject: name,
        data: { purpose: "signing", alg, keyId: key.keyId, issuer: rootName, notAfter: record.notAfter },
      });
    });
    return view(record);
  }

  async list(): Promise<FirmwareKeyView[]> {
    return (await this.store.keys.list()).filter((r) => r.purpose === "root" || r.purpose === "signing").map(view);
  }

  async get(name: string): Promise<FirmwareKeyView> {
    return view(await this.record(name));
  }

  /** The public root keys devices pin (all non-revoked root keys). */
  async trustedRoots(): Promise<FirmwarePublicKey[]> {
    return (await this.store.keys.list("root")).filter((r) => !r.revokedAt).map((r) => firmwarePublicKey(r.alg, r.publicKey));
  }

  /** The public key of one root, for `--trust ROOT.pub` files. */
  async rootPublicKey(name = "root"): Promise<FirmwarePublicKey> {
    const record = await this.record(name);
    if (record.purpose !== "root") throw new MoatError("FIRMWARE_KEY_NOT_FOUND", `${name} is not a root firmware key`);
    return firmwarePublicKey(record.alg, record.publicKey);
  }

  /**
   * Revokes a signing key: marks it, then signs a new revocation list version with the root.
   * Devices that fetch the list refuse every manifest signed by the key from then on.
   */
  async revoke(input: { name: string; reason: string; actor: string; rootPrivateKey?: Buffer }): Promise<{ version: number; document: SignedDocument }> {
    const record = await this.record(input.name);
    if (record.purpose !== "signing") throw new MoatError("VALIDATION_FAILED", `${input.name} is not a signing key (root keys are replaced, not revoked)`);
    const reason = input.reason.trim() || "unspecified";
    const root = await this.rootSigner(record.issuer ?? "root", input.rootPrivateKey);
    const now = this.clock().toISOString();
    return this.store.transact(async (uow) => {
      const current = await uow.keys.get(input.name);
      if (!current) throw new MoatError("FIRMWARE_KEY_NOT_FOUND", `no firmware key named ${input.name}`);
      if (current.revokedAt) throw new MoatError("FIRMWARE_KEY_REVOKED", `${input.name} was already revoked at ${current.revokedAt}`);
      await uow.keys.update({ ...current, revokedAt: now, revocationReason: reason });
      const revoked: RevokedKey[] = (await uow.keys.list("signing"))
        .filter((k) => k.revokedAt || k.name === input.name)
        .map((k) => ({ keyId: k.keyId, revokedAt: k.revokedAt ?? now, reason: k.revocationReason ?? reason }));
      const version = ((await uow.revocations.latest())?.version ?? 0) + 1;
      const document = await signRevocationList(root.signer, version, revoked, new Date(now));
      await uow.revocations.insert(version, JSON.stringify(document), now);
      await uow.events.append({ type: "firmware.key.revoked", severity: "high", actor: input.actor, subject: input.name, data: { keyId: current.keyId, reason, revocationListVersion: version } });
      await uow.changes.append({ kind: "firmware.revocations", subject: input.name, data: { version } });
      return { version, document };
    });
  }

  /** The newest signed revocation list, if any key was ever revoked. */
  async revocationList(): Promise<{ version: number; document: SignedDocument } | undefined> {
    const latest = await this.store.revocations.latest();
    return latest ? { version: latest.version, document: JSON.parse(latest.document) as SignedDocument } : undefined;
  }

  /** Builds and signs the manifest of an image with a stored signing key. */
  async signImage(input: { image: ImageSource; facts: ManifestFacts; keyName?: string; actor: string }): Promise<SignedManifest> {
    const record = input.keyName ? await this.record(input.keyName) : await this.defaultSigningKey();
    if (record.purpose !== "signing") throw new MoatError("VALIDATION_FAILED", `${record.name} is not a signing key`);
    if (record.revokedAt) throw new MoatError("FIRMWARE_KEY_REVOKED", `signing key ${record.name} was revoked at ${record.revokedAt}`);
    const now = input.facts.now ?? this.clock();
    if (record.notBefore && record.notAfter && (now < new Date(record.notBefore) || now > new Date(record.notAfter)))
      throw new MoatError("FIRMWARE_KEY_EXPIRED", `signing key ${record.name} is valid ${record.notBefore} – ${record.notAfter}`);
    const signer = await this.signer(record);
    const manifest = await buildManifest(input.image, { ...input.facts, now });
    const signed = await signManifest(manifest, [{ signer, certificate: JSON.parse(record.certificate!) as SignedDocument }]);
    await this.store.transact(async (uow) =>
      uow.events.append({
        type: "firmware.signed",
        severity: "info",
        actor: input.actor,
        subject: `${manifest.hardwareId}@${manifest.version}`,
        data: { key: record.name, securityVersion: manifest.securityVersion, sha256: manifest.image.sha256, size: manifest.image.size },
      }),
    );
    return signed;
  }

  /** Verifies an image against this installation's own roots and revocation list. */
  async verify(image: ImageSource, manifest: string | Uint8Array | object, policy: { hardwareId?: string; minSecurityVersion?: number } = {}): Promise<SecureBootResult> {
    const revocations = await this.revocationList();
    return verifyFirmware(image, manifest, { trustedRoots: await this.trustedRoots(), ...policy, ...(revocations ? { revocations: revocations.document } : {}), now: this.clock() });
  }

  private async defaultSigningKey(): Promise<FirmwareKeyRecord> {
    const now = this.clock().toISOString();
    const usable = (await this.store.keys.list("signing")).filter((k) => !k.revokedAt && (!k.notAfter || k.notAfter > now));
    if (usable.length === 0) throw new MoatError("FIRMWARE_KEY_NOT_FOUND", "no usable signing key: run moat firmware keygen");
    return usable.sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1))[0]!;
  }

  /**
   * Creates the private key of a new online key: in the token when it has the algorithm, else
   * generated here and sealed (the plaintext is wiped once sealed). Returns what the row stores.
   */
  private async newPrivateKey(name: string, purpose: "root" | "signing", alg: SignatureAlgorithm): Promise<{ publicKey: Buffer; stored: Pick<FirmwareKeyRecord, "sealedPrivateKey" | "location"> }> {
    if (this.token && TOKEN_ALGORITHMS.includes(alg)) {
      const generated = this.token.generate(`firmware-${purpose}`, alg as "ed25519" | "ecdsa-p256");
      return { publicKey: generated.publicKey, stored: { sealedPrivateKey: null, location: generated.location } };
    }
    const pair = generateKeyPair(alg);
    try {
      return { publicKey: pair.publicKey, stored: { sealedPrivateKey: await this.sealer.seal(pair.privateKey, firmwareKeyAad(name)), location: null } };
    } finally {
      pair.privateKey.fill(0);
    }
  }

  private async signer(record: FirmwareKeyRecord, privateKey?: Buffer): Promise<DocumentSigner> {
    const key = firmwarePublicKey(record.alg, record.publicKey);
    if (record.location && !privateKey) {
      if (!this.token) throw new MoatError("FIRMWARE_KEY_NOT_FOUND", `the private key of ${record.name} lives in ${record.location}, but keys.provider is not pkcs11`);
      const tokenSigner = this.token.signer(record.location);
      if (!tokenSigner.publicKey.equals(record.publicKey)) throw new MoatError("FIRMWARE_KEY_MALFORMED", `the key at ${record.location} is not the recorded key of ${record.name}`);
      return { key, sign: (message) => tokenSigner.sign(Buffer.from(message)) };
    }
    const secret = privateKey ?? (record.sealedPrivateKey ? await this.sealer.open(record.sealedPrivateKey, firmwareKeyAad(record.name)) : undefined);
    if (!secret) throw new MoatError("FIRMWARE_KEY_NOT_FOUND", `the private key of ${record.name} is kept offline: pass it with --root-key-file`);
    if (!publicKeyOf(record.alg, secret).equals(record.publicKey)) throw new MoatError("FIRMWARE_KEY_MALFORMED", `the private key given does not belong to ${record.name}`);
    return memorySigner(key, secret);
  }

  private async rootSigner(name: string, privateKey?: Buffer): Promise<{ record: FirmwareKeyRecord; signer: DocumentSigner }> {
    const record = await this.record(name);
    if (record.purpose !== "root") throw new MoatError("FIRMWARE_KEY_NOT_FOUND", `${name} is not a root firmware key`);
    return { record, signer: await this.signer(record, privateKey) };
  }

  private async record(name: string): Promise<FirmwareKeyRecord> {
    const record = await this.store.keys.get(name);
    if (!record || !(record.purpose === "root" || record.purpose === "signing")) throw new MoatError("FIRMWARE_KEY_NOT_FOUND", `no firmware key named ${name}`);
    return record;
  }
}

function checkName(name: string): string {
  if (!KEY_NAME.test(name)) throw new MoatError("VALIDATION_FAILED", `key name ${JSON.stringify(name)} must be 1-64 of A-Z a-z 0-9 . _ -`);
  return name;
}

function blank(name: string, purpose: FirmwareKeyPurpose, alg: SignatureAlgorithm, key: FirmwarePublicKey, now: Date): FirmwareKeyRecord {
  return {
    name,
    purpose,
    alg,
    keyId: key.keyId,
    publicKey: key.publicKey,
    sealedPrivateKey: null,
    location: null,
    certificate: null,
    issuer: null,
    notBefore: null,
    notAfter: null,
    revokedAt: null,
    revocationReason: null,
    createdAt: now.toISOString(),
  };
}

function view(record: FirmwareKeyRecord): FirmwareKeyView {
  return {
    name: record.name,
    purpose: record.purpose,
    alg: record.alg,
    keyId: record.keyId,
    issuer: record.issuer,
    notBefore: record.notBefore,
    notAfter: record.notAfter,
    offline: record.sealedPrivateKey === null && record.location === null,
    location: record.location,
    revokedAt: record.revokedAt,
    revocationReason: record.revocationReason,
    createdAt: record.createdAt,
  };
}
