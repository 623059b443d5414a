import type { IncomingMessage, ServerResponse } from "node:http";
import { MoatError, isMoatError } from "../errors.js";
import { firmwareKeyAad } from "./firmware-key-service.js";
import { parseManifest, serializeManifest, type SignedManifest } from "./manifest.js";
import type { FirmwareKeyPurpose, FirmwareKeyRecord, FirmwareStore, SecretSealer } from "./ports.js";
import { createTufHandler } from "./tuf-http-handler.js";
import { generateTufKey, tufSignerFromSeed, TUF_ROLES, type TufKeyring, type TufRole, type TufSigner } from "./tuf-keys.js";
import { TufRepository, type TufRepositoryStatus, type TufRoleKeys, type TufTargetInfo } from "./tuf-repository.js";

/** TUF role keys kept sealed in the store; opened on demand and cached for the process. */
class StoredTufKeyring implements TufKeyring {
  private readonly cache = new Map<string, TufSigner>();
  constructor(
    private readonly store: FirmwareStore,
    private readonly sealer: SecretSealer,
  ) {}

  async signers(keyIds: readonly string[]): Promise<TufSigner[]> {
    const wanted = new Set(keyIds);
    const missing = [...wanted].filter((id) => !this.cache.has(id));
    if (missing.length > 0) {
      const records = (await this.store.keys.list()).filter((r) => r.purpose.startsWith("tuf-") && r.sealedPrivateKey && missing.includes(r.keyId));
      for (const record of records) {
        const seed = await this.sealer.open(record.sealedPrivateKey!, firmwareKeyAad(record.name));
        this.cache.set(record.keyId, tufSignerFromSeed(seed));
        seed.fill(0);
      }
    }
    return keyIds.flatMap((id) => this.cache.get(id) ?? []);
  }
}

export interface TufInitOptions {
  /** Number of root keys (default 3) and how many must sign a root (default 2). */
  rootKeys?: number;
  rootThreshold?: number;
  actor: string;
}

/**
 * Moat's TUF repository as a service: keys sealed in the store, files under `<data dir>/tuf`,
 * timestamp/snapshot re-signed automatically before they expire, served under `/tuf/`.
 */
export class TufService {
  private readonly keyring: TufKeyring;
  private lastRefresh = 0;

  constructor(
    readonly dir: string,
    private readonly store: FirmwareStore,
    private readonly sealer: SecretSealer,
  ) {
    this.keyring = new StoredTufKeyring(store, sealer);
  }

  /** Creates the repository: a threshold of root keys plus one key for each online role. */
  async init(options: TufInitOptions): Promise<TufRepositoryStatus> {
    const rootKeys = options.rootKeys ?? 3;
    const threshold = options.rootThreshold ?? Math.min(2, rootKeys);
    if (!Number.isInteger(rootKeys) || rootKeys < 1 || rootKeys > 9 || !Number.isInteger(threshold) || threshold < 1 || threshold > rootKeys)
      throw new MoatError("TUF_THRESHOLD_INVALID", `root threshold ${threshold} of ${rootKeys} keys is not possible (1-9 keys)`);
    if (await this.isInitialized()) throw new MoatError("TUF_REPOSITORY_EXISTS", `a TUF repository already exists in ${this.dir}`);
    const roles = {} as Record<TufRole, TufRoleKeys>;
    for (const role of TUF_ROLES) {
      const count = role === "root" ? rootKeys : 1;
      const keys = [];
      for (let i = 0; i < count; i++) keys.push(await this.newKey(role, options.actor));
      roles[role] = { keys, threshold: role === "root" ? threshold : 1 };
    }
    await TufRepository.create(this.dir, this.keyring, roles);
    await this.store.transact((uow) =>
      uow.events.append({ type: "tuf.initialized", severity: "info", actor: options.actor, subject: "tuf", data: { rootKeys, rootThreshold: threshold } }),
    );
    return this.status();
  }

  async isInitialized(): Promise<boolean> {
    try {
      await TufRepository.open(this.dir, this.keyring);
      return true;
    } catch (error) {
      if (isMoatError(error, "TUF_REPOSITORY_NOT_INITIALIZED")) return false;
      throw error;
    }
  }

  /** Initialises with defaults when needed (first release on a fresh installation). */
  async ensure(actor: string): Promise<TufRepository> {
    if (!(await this.isInitialized())) await this.init({ actor });
    return TufRepository.open(this.dir, this.keyring);
  }

  async status(): Promise<TufRepositoryStatus> {
    return (await TufRepository.open(this.dir, this.keyring)).status();
  }

  async listTargets(): Promise<TufTargetInfo[]> {
    return (await TufRepository.open(this.dir, this.keyring)).listTargets();
  }

  /** The root metadata a device pins before its first update. */
  async trustedRoot(version?: number): Promise<Buffer> {
    return (await TufRepository.open(this.dir, this.keyring)).trustedRoot(version);
  }

  /**
   * Publishes an image and its signed manifest as two targets, `<hw>/<version>/<name>` and
   * `<hw>/<version>/manifest.json`, both carrying hardware id, version and security version.
   */
  async publishRelease(image: string, manifest: SignedManifest | string, actor: string): Promise<{ imageTarget: string; manifestTarget: string }> {
    const { manifest: body, signed } = parseManifest(typeof manifest === "string" ? manifest : serializeManifest(manifest));
    const repo = await this.ensure(actor);
    const custom = { hardwareId: body.hardwareId, version: body.version, securityVersion: body.securityVersion };
    const imageTarget = body.image.path;
    const manifestTarget = imageTarget.replace(/[^/]+$/, "manifest.json");
    if (manifestTarget === imageTarget) throw new MoatError("FIRMWARE_PATH_INVALID", "the image may not be named manifest.json");
    await repo.addTargets([
      { path: imageTarget, source: image, custom: { ...custom, kind: "image" } },
      { path: manifestTarget, source: Buffer.from(serializeManifest(signed)), custom: { ...custom, kind: "manifest" } },
    ]);
    await this.store.transact((uow) =>
      uow.events.append({ type: "tuf.targets.published", severity: "info", actor, subject: imageTarget, data: { manifestTarget, ...custom } }),
    );
    return { imageTarget, manifestTarget };
  }

  /** Re-signs online metadata that is past half its lifetime. */
  async refresh(): Promise<{ timestamp: boolean; snapshot: boolean; targets: boolean }> {
    return (await TufRepository.open(this.dir, this.keyring)).refresh();
  }

  /** Replaces one role's key through a new root version; the old key is marked retired. */
  async rotate(role: TufRole, actor: string): Promise<{ rootVersion: number }> {
    const repo = await TufRepository.open(this.dir, this.keyring);
    const before = (await this.store.keys.list(`tuf-${role}`)).filter((k) => !k.revokedAt);
    const count = role === "root" ? Math.max(before.length, 1) : 1;
    const keys = [];
    for (let i = 0; i < count; i++) keys.push(await this.newKey(role, actor));
    // The root keeps its threshold; online roles have one key each.
    const rootVersion = await repo.rotateKeys(role, { keys });
    const now = new Date().toISOString();
    await this.store.transact(async (uow) => {
      for (const old of before) await uow.keys.update({ ...old, revokedAt: now, revocationReason: "rotated" });
      await uow.events.append({ type: "tuf.key.rotated", severity: "medium", actor, subject: role, data: { rootVersion, retired: before.map((k) => k.keyId) } });
    });
    return { rootVersion };
  }

  /** A request handler for `/tuf/…` that refreshes the timestamp at most once a minute before serving it. */
  handler(prefix = "/tuf/"): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
    return createTufHandler({
      dir: this.dir,
      prefix,
      beforeTimestamp: async () => {
        if (Date.now() - this.lastRefresh < 60_000) return;
        this.lastRefresh = Date.now();
        await this.refresh();
      },
    });
  }

  private async newKey(role: TufRole, actor: string) {
    const { seed, signer } = generateTufKey();
    const name = `tuf-${role}-${signer.key.keyID.slice(0, 12)}`;
    const purpose = `tuf-${role}` as FirmwareKeyPurpose;
    const record: FirmwareKeyRecord = {
      name,
      purpose,
      alg: "ed25519",
      keyId: signer.key.keyID,
      publicKey: Buffer.from(signer.key.keyVal.public!, "hex"),
      sealedPrivateKey: await this.sealer.seal(seed, firmwareKeyAad(name)),
      location: null,
      certificate: null,
      issuer: null,
      notBefore: null,
      notAfter: null,
      revokedAt: null,
      revocationReason: null,
      createdAt: new Date().toISOString(),
    };
    seed.fill(0);
    await this.store.transact(async (uow) => {
      await uow.keys.insert(record);
      await uow.events.append({ type: "tuf.key.created", severity: "info", actor, subject: name, data: { role, keyId: record.keyId } });
    });
    return signer.key;
  }
}
