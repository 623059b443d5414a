import { createPrivateKey, type KeyObject } from "node:crypto";
import type { EventAppender } from "../audit/index.js";
import { MoatError } from "../errors.js";
import type { Envelope } from "../keys/index.js";
import type { ChangeWriter, Transactional } from "../ports.js";
import { randomBytes } from "node:crypto";
import { createCaHierarchy, createIssuingCa, type CaMaterial } from "./ca-hierarchy.js";
import { loadIssuer, type CaKeyInput } from "./issuer.js";
import type { ExternalSigner, KeyType } from "./key-types.js";
import { issueServerCertificate } from "./server-certificate.js";

/** What a stored certificate of Moat's own is for. */
export type CaRole = "root" | "issuing" | "server";

export interface StoredCertificate {
  serialHex: string;
  role: CaRole;
  keyType: KeyType;
  subject: string;
  certificatePem: string;
  notAfter: string;
  /** The one currently used for its role (older issuing CAs stay for verification and revocation). */
  active: boolean;
  createdAt: string;
  /** False when the key is not held here (an offline root). */
  hasKey: boolean;
  /** Where the key lives when it was generated in a PKCS#11 token (then nothing is sealed here). */
  keyLocation?: string | null;
}

/** Storage port for Moat's own CA and server certificates and their sealed keys. */
export interface CaKeyRepository {
  insert(record: StoredCertificate, sealedKey: Buffer | null): Promise<void>;
  list(role?: CaRole): Promise<StoredCertificate[]>;
  get(serialHex: string): Promise<StoredCertificate | undefined>;
  sealedKey(serialHex: string): Promise<Buffer | null>;
  setActive(serialHex: string, active: boolean): Promise<void>;
  setSealedKey(serialHex: string, sealedKey: Buffer | null): Promise<void>;
}

export interface CaUnitOfWork {
  cas: CaKeyRepository;
  events: EventAppender;
  changes: ChangeWriter;
}

export interface CaRegistryStore {
  transact: Transactional<CaUnitOfWork>;
  cas: CaKeyRepository;
}

/** The envelope-encryption surface the registry needs (src/keys Envelope satisfies it). */
export type Sealer = Pick<Envelope, "seal" | "open">;

/** Where `moat init` generates the root and issuing CA keys. */
export type CaKeyStorage = "software" | "pkcs11";
export const CA_KEY_STORAGES: readonly CaKeyStorage[] = ["software", "pkcs11"];

/**
 * CA keys that live outside the store (a PKCS#11 token, reached through the keys door). The store
 * records only the location each signer reports.
 */
export interface CaKeyVault {
  /** Generates a new non-extractable key for a CA of `role` and returns its signer. */
  generate(role: "root" | "issuing"): ExternalSigner;
  /** The signer of a key generated earlier, by the location recorded for it. */
  load(location: string): ExternalSigner;
  close(): void;
}

export interface InitializeCaOptions {
  keyType: KeyType;
  /** `pkcs11`: generate the root and issuing CA keys in the token (default `software`, sealed here). */
  caKeys?: CaKeyStorage;
  trustDomain: string;
  hostnames: string[];
  publicUrl?: string;
}

/** The AAD that binds a sealed key to its row. */
export function caKeyAad(role: CaRole, serialHex: string): string {
  return `ca-key:${role}:${serialHex}`;
}

/**
 * Moat's own certificates: the root and issuing CAs and the TLS server certificate of its listeners.
 * Private keys are stored only sealed (envelope-encrypted, AAD = role + serial).
 */
export class CaRegistry {
  constructor(
    private readonly store: CaRegistryStore,
    private readonly sealer: Sealer,
    /** Present when keys.provider=pkcs11: reaches CA keys generated in the token. */
    private readonly vault?: CaKeyVault,
  ) {}

  /** Creates root + issuing CA and the server certificate; refuses when a root exists. */
  async initialize(options: InitializeCaOptions, actor: string): Promise<{ root: StoredCertificate; issuing: StoredCertificate; server: StoredCertificate }> {
    if ((await this.store.cas.list("root")).length > 0) throw new MoatError("DATA_DIR_ALREADY_INITIALIZED", "a root CA exists already");
    const signers = options.caKeys === "pkcs11" ? this.tokenSigners(options.keyType) : undefined;
    const { root, issuing } = await createCaHierarchy({
      keyType: options.keyType,
      trustDomain: options.trustDomain,
      ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
      ...(signers ? { signers } : {}),
    });
    const server = await issueServerCertificate({
      issuing,
      hostnames: options.hostnames,
      trustDomain: options.trustDomain,
      ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
    });
    const now = new Date().toISOString();
    const records = {
      root: this.recordOf(root, "root", now),
      issuing: this.recordOf(issuing, "issuing", now),
      server: {
        serialHex: server.serialHex,
        role: "server" as const,
        keyType: "ec-p256" as KeyType,
        subject: `CN=${options.hostnames[0]}`,
        certificatePem: server.certificatePem,
        notAfter: server.notAfter.toISOString(),
        active: true,
        createdAt: now,
        hasKey: true,
        keyLocation: null,
      },
    };
    const sealed = {
      root: await this.sealedKeyOf(root, "root"),
      issuing: await this.sealedKeyOf(issuing, "issuing"),
      // The TLS server key stays a software key (sealed): TLS handshakes sign with it constantly.
      server: await this.sealer.seal(server.privateKeyPkcs8Der, caKeyAad("server", server.serialHex)),
    };
    await this.store.transact(async (uow) => {
      for (const role of ["root", "issuing", "server"] as const) await uow.cas.insert(records[role], sealed[role]);
      await uow.events.append({
        type: "ca.initialized",
        severity: "info",
        actor,
        subject: records.root.subject,
        data: { keyType: options.keyType, caKeys: signers ? "pkcs11" : "software", root: root.serialHex, issuing: issuing.serialHex, server: server.serialHex, hostnames: options.hostnames },
      });
    });
    return records;
  }

  private recordOf(material: CaMaterial, role: CaRole, now: string): StoredCertificate {
    return {
      serialHex: material.serialHex,
      role,
      keyType: material.keyType,
      subject: material.subject,
      certificatePem: material.certificatePem,
      notAfter: material.notAfter.toISOString(),
      active: true,
      createdAt: now,
      hasKey: true,
      keyLocation: material.signer?.location ?? null,
    };
  }

  /** The sealed PKCS#8 key of new CA material; null when the key lives in a token. */
  private async sealedKeyOf(material: CaMaterial, role: CaRole): Promise<Buffer | null> {
    return material.privateKeyPkcs8Der ? this.sealer.seal(material.privateKeyPkcs8Der, caKeyAad(role, material.serialHex)) : null;
  }

  /** `--ca-keys pkcs11`: root and issuing keys generated in the token (P-256, the token layer's curve). */
  private tokenSigners(keyType: KeyType): { root: ExternalSigner; issuing: ExternalSigner } {
    if (!this.vault) throw new MoatError("CONFIG_INVALID", "--ca-keys pkcs11 needs keys.provider=pkcs11 (with keys.pkcs11Module, the token label or slot and a PIN source)");
    if (keyType !== "ec-p256") throw new MoatError("CONFIG_INVALID", `--ca-keys pkcs11 generates P-256 keys in the token; --key-type ${keyType} is not supported there (use --key-type ec-p256)`);
    return { root: this.vault.generate("root"), issuing: this.vault.generate("issuing") };
  }

  private vaultFor(record: StoredCertificate): CaKeyVault {
    if (!this.vault)
      throw new MoatError("PKI_CA_KEY_IN_TOKEN", `the key of ${record.role} CA ${record.serialHex} lives in a PKCS#11 token (${record.keyLocation}); configure keys.provider=pkcs11 to use it`);
    return this.vault;
  }

  /** What signs for a stored CA: its token signer, or its PKCS#8 key unsealed in memory. */
  async caKeyInput(record: StoredCertificate): Promise<CaKeyInput> {
    if (record.keyLocation) return { certificatePem: record.certificatePem, keyType: record.keyType, signer: this.vaultFor(record).load(record.keyLocation) };
    return { certificatePem: record.certificatePem, keyType: record.keyType, privateKeyPkcs8Der: await this.privateKeyDer(record.serialHex) };
  }

  /** The active certificate for a role; DATA_DIR_NOT_INITIALIZED when there is none. */
  async active(role: CaRole): Promise<StoredCertificate> {
    const found = (await this.store.cas.list(role)).find((c) => c.active);
    if (!found) throw new MoatError("DATA_DIR_NOT_INITIALIZED", `no active ${role} certificate: run moat init`);
    return found;
  }

  list(role?: CaRole): Promise<StoredCertificate[]> {
    return this.store.cas.list(role);
  }

  /** PEM chain: the active issuing CA, then the root (what `moat ca chain` prints). */
  async chainPem(): Promise<string> {
    const [issuing, root] = await Promise.all([this.active("issuing"), this.active("root")]);
    return issuing.certificatePem.trimEnd() + "\n" + root.certificatePem.trimEnd() + "\n";
  }

  /** The PKCS#8 DER private key of a stored certificate, unsealed in memory only. */
  async privateKeyDer(serialHex: string): Promise<Buffer> {
    const record = await this.store.cas.get(serialHex);
    if (!record) throw new MoatError("PKI_CA_NOT_FOUND", `no stored CA certificate with serial ${serialHex}`);
    if (record.keyLocation) throw new MoatError("PKI_CA_KEY_IN_TOKEN", `the key of ${record.role} CA ${serialHex} lives in a PKCS#11 token (${record.keyLocation}) and cannot be exported`);
    const sealed = await this.store.cas.sealedKey(serialHex);
    if (!sealed) throw new MoatError("PKI_ROOT_KEY_OFFLINE", `the key of ${record.role} certificate ${serialHex} is not held here (offline)`);
    return this.sealer.open(sealed, caKeyAad(record.role, serialHex));
  }

  async privateKey(serialHex: string): Promise<KeyObject> {
    return createPrivateKey({ key: await this.privateKeyDer(serialHex), format: "der", type: "pkcs8" });
  }

  /** TLS material for Moat's listeners: server key, server certificate + issuing CA, and the CA bundle. */
  async serverTls(): Promise<{ key: string; cert: string; ca: string }> {
    const server = await this.active("server");
    const key = (await this.privateKey(server.serialHex)).export({ format: "pem", type: "pkcs8" }) as string;
    const issuing = await this.active("issuing");
    return { key, cert: server.certificatePem.trimEnd() + "\n" + issuing.certificatePem.trimEnd() + "\n", ca: await this.chainPem() };
  }

  /** The root certificate (PEM), for `moat ca export-root`. */
  async rootPem(): Promise<string> {
    return (await this.active("root")).certificatePem;
  }

  /**
   * `moat ca rotate-issuer`: a new issuing CA signed by the root becomes active. The old one stays
   * stored with its key, so its certificates remain verifiable, revocable and answered by OCSP/CRL
   * until they expire. Needs the root key: held here, or given (`--root-key`) when the root is offline.
   */
  async rotateIssuer(options: { trustDomain: string; publicUrl?: string; rootKeyPkcs8Der?: Buffer }, actor: string): Promise<StoredCertificate> {
    const root = await this.active("root");
    const rootKey: CaKeyInput | undefined = options.rootKeyPkcs8Der
      ? { certificatePem: root.certificatePem, keyType: root.keyType, privateKeyPkcs8Der: options.rootKeyPkcs8Der }
      : root.hasKey
        ? await this.caKeyInput(root)
        : undefined;
    if (!rootKey) throw new MoatError("PKI_ROOT_KEY_OFFLINE", "the root key is offline: pass it with --root-key FILE (or bring it back with moat ca online-root)");
    loadIssuer(rootKey);
    const previous = await this.active("issuing");
    // A token-held root gets a token-held issuing CA too: the installation keeps one kind of CA key.
    const signer = root.keyLocation ? this.vaultFor(root).generate("issuing") : undefined;
    const issuing = await createIssuingCa({
      root: rootKey,
      trustDomain: options.trustDomain,
      commonName: `Moat Issuing CA ${randomBytes(3).toString("hex")}`,
      ...(options.publicUrl ? { publicUrl: options.publicUrl } : {}),
      ...(signer ? { signer } : {}),
    });
    const record = this.recordOf(issuing, "issuing", new Date().toISOString());
    const sealed = await this.sealedKeyOf(issuing, "issuing");
    await this.store.transact(async (uow) => {
      await uow.cas.setActive(previous.serialHex, false);
      await uow.cas.insert(record, sealed);
      await uow.events.append({ type: "ca.issuer_rotated", severity: "medium", actor, subject: record.subject, data: { previous: previous.serialHex, issuing: record.serialHex } });
      await uow.changes.append({ kind: "ca.changed", subject: record.serialHex, data: { role: "issuing", previous: previous.serialHex } });
    });
    return record;
  }

  /** `moat ca offline-root`: forgets the sealed root key (the caller has written it elsewhere first). */
  async forgetRootKey(actor: string): Promise<StoredCertificate> {
    const root = await this.active("root");
    if (root.keyLocation) throw new MoatError("PKI_CA_KEY_IN_TOKEN", `the root key lives in a PKCS#11 token (${root.keyLocation}); keep the token offline instead`);
    if (!root.hasKey) throw new MoatError("PKI_ROOT_KEY_OFFLINE", "the root key is already offline");
    await this.store.transact(async (uow) => {
      await uow.cas.setSealedKey(root.serialHex, null);
      await uow.events.append({ type: "ca.root_offline", severity: "medium", actor, subject: root.subject, data: { root: root.serialHex } });
      // Other processes (moat serve) drop the root key they hold in memory.
      await uow.changes.append({ kind: "ca.changed", subject: root.serialHex, data: { role: "root", keyOnline: false } });
    });
    return { ...root, hasKey: false };
  }

  /** `moat ca online-root --key FILE`: seals the root key again after checking it matches the root certificate. */
  async restoreRootKey(pkcs8Der: Buffer, actor: string): Promise<StoredCertificate> {
    const root = await this.active("root");
    if (root.keyLocation) throw new MoatError("PKI_CA_KEY_IN_TOKEN", `the root key lives in a PKCS#11 token (${root.keyLocation}); a software key cannot replace it`);
    try {
      loadIssuer({ certificatePem: root.certificatePem, privateKeyPkcs8Der: pkcs8Der, keyType: root.keyType });
    } catch (cause) {
      throw new MoatError("PKI_CA_INVALID", "that key does not belong to the root certificate", { cause });
    }
    const sealed = await this.sealer.seal(pkcs8Der, caKeyAad("root", root.serialHex));
    await this.store.transact(async (uow) => {
      await uow.cas.setSealedKey(root.serialHex, sealed);
      await uow.events.append({ type: "ca.root_online", severity: "medium", actor, subject: root.subject, data: { root: root.serialHex } });
      await uow.changes.append({ kind: "ca.changed", subject: root.serialHex, data: { role: "root", keyOnline: true } });
    });
    return { ...root, hasKey: true };
  }
}
