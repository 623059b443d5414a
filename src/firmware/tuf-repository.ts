import { createHash } from "node:crypto";
import { mkdir, open, readdir, readFile, stat, unlink } from "node:fs/promises";
import { dirname, join, posix } from "node:path";
import { Key, MetaFile, Metadata, MetadataKind, Root, Snapshot, TargetFile, Targets, Timestamp } from "@tufjs/models";
import { MoatError } from "../errors.js";
import { digestImage } from "./image-digest.js";
import { copyFileAtomic, writeFileAtomic } from "../lib/atomic-file.js";
import { assertSafeTargetPath } from "./target-path.js";
import { TUF_ROLES, type TufKeyring, type TufRole } from "./tuf-keys.js";

/** Metadata lifetimes (TUF spec §4: short for online roles, long for the offline root). */
export interface TufExpiries {
  root: number;
  targets: number;
  snapshot: number;
  timestamp: number;
}

const DAY = 86_400_000;
export const DEFAULT_TUF_EXPIRIES: TufExpiries = Object.freeze({ root: 365 * DAY, targets: 90 * DAY, snapshot: 7 * DAY, timestamp: DAY });
const SPEC_VERSION = "1.0.31";

export interface TufRoleKeys {
  keys: Key[];
  threshold: number;
}

export interface TufTargetInput {
  /** Target path as clients ask for it, e.g. `sensor-v2/1.2.0/image.bin`. */
  path: string;
  /** A file to copy in, or the bytes. */
  source: string | Uint8Array;
  /** Custom fields stored with the target (hardware id, version, security version). */
  custom?: Record<string, string | number | boolean>;
}

export interface TufTargetInfo {
  path: string;
  length: number;
  sha256: string;
  custom: Record<string, unknown>;
}

export interface TufRepositoryStatus {
  versions: Record<TufRole, number>;
  expires: Record<TufRole, string>;
  consistentSnapshot: boolean;
  targets: number;
}

interface State {
  root: Metadata<Root>;
  targets: Metadata<Targets>;
  snapshot: Metadata<Snapshot>;
  timestamp: Metadata<Timestamp>;
}

/**
 * A TUF repository on disk (TUF spec 1.0.31), laid out for consistent snapshots (§5.6):
 *   metadata/N.root.json, N.targets.json, N.snapshot.json, timestamp.json
 *   targets/<dir>/<sha256>.<name>
 * Every change re-reads the disk state under a lock file (so a CLI process and the server can both
 * publish), writes new files first and `timestamp.json` last by atomic rename: a client never sees
 * a timestamp that points at a snapshot not yet written.
 */
export class TufRepository {
  private constructor(
    readonly dir: string,
    private readonly keyring: TufKeyring,
    private readonly expiries: TufExpiries,
  ) {}

  get metadataDir(): string {
    return join(this.dir, "metadata");
  }

  get targetsDir(): string {
    return join(this.dir, "targets");
  }

  /** Creates a new repository: root v1, empty targets, snapshot and timestamp, all signed. */
  static async create(
    dir: string,
    keyring: TufKeyring,
    roles: Record<TufRole, TufRoleKeys>,
    options: { expiries?: Partial<TufExpiries>; now?: Date } = {},
  ): Promise<TufRepository> {
    const repo = new TufRepository(dir, keyring, { ...DEFAULT_TUF_EXPIRIES, ...options.expiries });
    await mkdir(repo.metadataDir, { recursive: true, mode: 0o755 });
    await mkdir(repo.targetsDir, { recursive: true, mode: 0o755 });
    const existing = await readdir(repo.metadataDir);
    if (existing.some((name) => name.endsWith(".json"))) throw new MoatError("TUF_REPOSITORY_EXISTS", `a TUF repository already exists in ${dir}`);
    const now = options.now ?? new Date();
    const root = new Metadata(buildRoot(1, expiry(now, repo.expiries.root), roles));
    await repo.signRoot(root, [root.signed]);
    const targets = new Metadata(new Targets({ version: 1, specVersion: SPEC_VERSION, expires: expiry(now, repo.expiries.targets) }));
    await repo.signRole(targets, "targets", root.signed);
    await repo.writeChain({ root, targets }, root.signed, now, { root: 1, targets: 1 });
    return repo;
  }

  /** Opens an existing repository. */
  static async open(dir: string, keyring: TufKeyring, options: { expiries?: Partial<TufExpiries> } = {}): Promise<TufRepository> {
    const repo = new TufRepository(dir, keyring, { ...DEFAULT_TUF_EXPIRIES, ...options.expiries });
    await repo.load();
    return repo;
  }

  /** The newest root metadata bytes: what a device pins as its initial trusted `root.json`. */
  async trustedRoot(version?: number): Promise<Buffer> {
    const state = await this.load();
    return readFile(join(this.metadataDir, `${version ?? state.root.signed.version}.root.json`));
  }

  /** Versions and expiries of the four roles. */
  async status(): Promise<TufRepositoryStatus> {
    const state = await this.load();
    const versions = { root: state.root.signed.version, targets: state.targets.signed.version, snapshot: state.snapshot.signed.version, timestamp: state.timestamp.signed.version };
    const expires = { root: state.root.signed.expires, targets: state.targets.signed.expires, snapshot: state.snapshot.signed.expires, timestamp: state.timestamp.signed.expires };
    return { versions, expires, consistentSnapshot: state.root.signed.consistentSnapshot, targets: Object.keys(state.targets.signed.targets).length };
  }

  /** Lists published targets. */
  async listTargets(): Promise<TufTargetInfo[]> {
    const state = await this.load();
    return Object.values(state.targets.signed.targets).map(describeTarget);
  }

  /**
   * Publishes targets: copies each file under its hash-prefixed name, then signs a new targets,
   * snapshot and timestamp version. Re-adding an identical target is a no-op; a different file
   * under a published path is refused (a published path never changes meaning).
   */
  async addTargets(inputs: readonly TufTargetInput[], now = new Date()): Promise<TufTargetInfo[]> {
    return this.locked(async () => {
      const state = await this.load();
      const added: TargetFile[] = [];
      for (const input of inputs) {
        const path = assertSafeTargetPath(input.path);
        const digest = await digestImage(typeof input.source === "string" ? input.source : once(input.source));
        const sha256 = digest.sha256.toString("hex");
        const existing = state.targets.signed.targets[path];
        if (existing) {
          if (existing.hashes.sha256 !== sha256 || existing.length !== digest.size)
            throw new MoatError("TUF_TARGET_EXISTS", `target ${path} is already published with other content`);
          continue;
        }
        await this.storeTargetFile(path, sha256, input.source);
        added.push(new TargetFile({ path, length: digest.size, hashes: { sha256 }, ...(input.custom ? { unrecognizedFields: { custom: input.custom } } : {}) }));
      }
      if (added.length === 0) return [];
      const previous = state.targets.signed;
      const targets = new Targets({ version: previous.version + 1, specVersion: SPEC_VERSION, expires: expiry(now, this.expiries.targets), targets: { ...previous.targets } });
      for (const target of added) targets.addTarget(target);
      const metadata = new Metadata(targets);
      await this.signRole(metadata, "targets", state.root.signed);
      await this.writeChain({ targets: metadata }, state.root.signed, now, { targets: targets.version }, state);
      return added.map(describeTarget);
    });
  }

  /**
   * Re-signs what is close to expiry (less than half its lifetime left): timestamp, snapshot, and
   * targets. Run periodically by the server so clients never see expired online metadata.
   */
  async refresh(now = new Date()): Promise<{ timestamp: boolean; snapshot: boolean; targets: boolean }> {
    return this.locked(async () => {
      const state = await this.load();
      const due = (expires: string, lifetime: number) => Date.parse(expires) - now.getTime() < lifetime / 2;
      const targetsDue = due(state.targets.signed.expires, this.expiries.targets);
      const snapshotDue = targetsDue || due(state.snapshot.signed.expires, this.expiries.snapshot);
      const timestampDue = snapshotDue || due(state.timestamp.signed.expires, this.expiries.timestamp);
      if (!timestampDue) return { timestamp: false, snapshot: false, targets: false };
      let targets: Metadata<Targets> | undefined;
      if (targetsDue) {
        const previous = state.targets.signed;
        targets = new Metadata(new Targets({ version: previous.version + 1, specVersion: SPEC_VERSION, expires: expiry(now, this.expiries.targets), targets: previous.targets }));
        await this.signRole(targets, "targets", state.root.signed);
      }
      await this.writeChain(targets ? { targets } : {}, state.root.signed, now, targets ? { targets: targets.signed.version } : {}, state, !snapshotDue);
      return { timestamp: true, snapshot: snapshotDue, targets: targetsDue };
    });
  }

  /**
   * Replaces the keys of one role through a new root version (TUF spec §6.1): the new root is
   * signed by a threshold of the current root keys and, for a root rotation, of the new ones too.
   * Metadata of the rotated role is re-signed with the new keys at once.
   */
  async rotateKeys(role: TufRole, replacement: { keys: Key[]; threshold?: number }, now = new Date()): Promise<number> {
    return this.locked(async () => {
      const state = await this.load();
      const current = state.root.signed;
      const roles = Object.fromEntries(
        TUF_ROLES.map((name) => [
          name,
          name === role
            ? { keys: replacement.keys, threshold: replacement.threshold ?? Math.min(current.roles[name]!.threshold, replacement.keys.length) }
            : { keys: current.roles[name]!.keyIDs.map((id) => current.keys[id]!), threshold: current.roles[name]!.threshold },
        ]),
      ) as Record<TufRole, TufRoleKeys>;
      const root = new Metadata(buildRoot(current.version + 1, expiry(now, this.expiries.root), roles));
      await this.signRoot(root, [current, root.signed]);
      await this.writeFile(`${root.signed.version}.root.json`, root);
      let targets: Metadata<Targets> | undefined;
      if (role === "targets") {
        const previous = state.targets.signed;
        targets = new Metadata(new Targets({ version: previous.version + 1, specVersion: SPEC_VERSION, expires: expiry(now, this.expiries.targets), targets: previous.targets }));
        await this.signRole(targets, "targets", root.signed);
      }
      await this.writeChain(targets ? { targets } : {}, root.signed, now, targets ? { targets: targets.signed.version } : {}, state, role === "timestamp");
      return root.signed.version;
    });
  }

  private async writeChain(
    fresh: { root?: Metadata<Root>; targets?: Metadata<Targets> },
    root: Root,
    now: Date,
    versions: { root?: number; targets?: number },
    previous?: State,
    keepSnapshot = false,
  ): Promise<void> {
    if (fresh.root) await this.writeFile(`${fresh.root.signed.version}.root.json`, fresh.root);
    if (fresh.targets) await this.writeFile(`${fresh.targets.signed.version}.targets.json`, fresh.targets);
    let snapshotBytes: Buffer;
    let snapshotVersion: number;
    if (keepSnapshot && previous) {
      snapshotVersion = previous.snapshot.signed.version;
      snapshotBytes = await readFile(join(this.metadataDir, `${snapshotVersion}.snapshot.json`));
    } else {
      const targetsVersion = versions.targets ?? previous!.targets.signed.version;
      snapshotVersion = (previous?.snapshot.signed.version ?? 0) + 1;
      const snapshot = new Metadata(
        new Snapshot({ version: snapshotVersion, specVersion: SPEC_VERSION, expires: expiry(now, this.expiries.snapshot), meta: { "targets.json": new MetaFile({ version: targetsVersion }) } }),
      );
      await this.signRole(snapshot, "snapshot", root);
      snapshotBytes = await this.writeFile(`${snapshotVersion}.snapshot.json`, snapshot);
    }
    const timestamp = new Metadata(
      new Timestamp({
        version: (previous?.timestamp.signed.version ?? 0) + 1,
        specVersion: SPEC_VERSION,
        expires: expiry(now, this.expiries.timestamp),
        snapshotMeta: new MetaFile({ version: snapshotVersion, length: snapshotBytes.length, hashes: { sha256: createHash("sha256").update(snapshotBytes).digest("hex") } }),
      }),
    );
    await this.signRole(timestamp, "timestamp", root);
    await this.writeFile("timestamp.json", timestamp);
  }

  private async signRole(metadata: Metadata<Targets | Snapshot | Timestamp>, role: TufRole, root: Root): Promise<void> {
    const spec = root.roles[role]!;
    const signers = await this.keyring.signers(spec.keyIDs);
    if (signers.length < spec.threshold)
      throw new MoatError("TUF_THRESHOLD_INVALID", `signing ${role} needs ${spec.threshold} of its keys, the keyring holds ${signers.length}`);
    for (const signer of signers.slice(0, spec.threshold)) metadata.sign((data) => signer.sign(data), true);
  }

  /** A root is signed by a threshold of the keys of every root in `authorities` (old and new). */
  private async signRoot(metadata: Metadata<Root>, authorities: Root[]): Promise<void> {
    const signed = new Set<string>();
    for (const authority of authorities) {
      const spec = authority.roles.root!;
      const signers = await this.keyring.signers(spec.keyIDs);
      if (signers.length < spec.threshold)
        throw new MoatError("TUF_THRESHOLD_INVALID", `signing root v${metadata.signed.version} needs ${spec.threshold} root keys of v${authority.version}, the keyring holds ${signers.length}`);
      for (const signer of signers) {
        if (signed.has(signer.key.keyID)) continue;
        metadata.sign((data) => signer.sign(data), true);
        signed.add(signer.key.keyID);
      }
    }
  }

  private async writeFile(name: string, metadata: Metadata<Root | Targets | Snapshot | Timestamp>): Promise<Buffer> {
    const bytes = Buffer.from(JSON.stringify(metadata.toJSON()));
    await writeFileAtomic(join(this.metadataDir, name), bytes);
    return bytes;
  }

  private async storeTargetFile(path: string, sha256: string, source: string | Uint8Array): Promise<void> {
    const { dir, base } = posix.parse(path);
    const destination = join(this.targetsDir, dir, `${sha256}.${base}`);
    await mkdir(dirname(destination), { recursive: true });
    if (typeof source === "string") await copyFileAtomic(source, destination);
    else await writeFileAtomic(destination, source);
  }

  private async load(): Promise<State> {
    let names: string[];
    try {
      names = await readdir(this.metadataDir);
    } catch {
      throw new MoatError("TUF_REPOSITORY_NOT_INITIALIZED", `no TUF repository in ${this.dir}`);
    }
    const latest = (role: string) => Math.max(0, ...names.map((n) => new RegExp(`^(\\d+)\\.${role}\\.json$`).exec(n)).map((m) => (m ? Number(m[1]) : 0)));
    if (latest("root") === 0 || !names.includes("timestamp.json")) throw new MoatError("TUF_REPOSITORY_NOT_INITIALIZED", `no TUF repository in ${this.dir}`);
    const read = async (name: string) => {
      try {
        return JSON.parse(await readFile(join(this.metadataDir, name), "utf8"));
      } catch (cause) {
        throw new MoatError("TUF_METADATA_INVALID", `TUF metadata ${name} does not load`, { cause });
      }
    };
    try {
      const timestamp = Metadata.fromJSON(MetadataKind.Timestamp, await read("timestamp.json"));
      const snapshot = Metadata.fromJSON(MetadataKind.Snapshot, await read(`${timestamp.signed.snapshotMeta.version}.snapshot.json`));
      const targetsVersion = snapshot.signed.meta["targets.json"]?.version ?? latest("targets");
      return {
        root: Metadata.fromJSON(MetadataKind.Root, await read(`${latest("root")}.root.json`)),
        targets: Metadata.fromJSON(MetadataKind.Targets, await read(`${targetsVersion}.targets.json`)),
        snapshot,
        timestamp,
      };
    } catch (cause) {
      if (cause instanceof MoatError) throw cause;
      throw new MoatError("TUF_METADATA_INVALID", "TUF metadata does not parse", { cause });
    }
  }

  /** Serialises writers across processes with an exclusive lock file (stale after 60 s). */
  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    const lock = join(this.dir, ".lock");
    for (let attempt = 0; ; attempt++) {
      try {
        const handle = await open(lock, "wx", 0o600);
        await handle.writeFile(String(process.pid));
        await handle.close();
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
        const age = Date.now() - (await stat(lock).then((s) => s.mtimeMs).catch(() => Date.now()));
        if (age > 60_000) await unlink(lock).catch(() => undefined);
        else if (attempt > 200) throw new MoatError("STORE_CONFLICT", `the TUF repository in ${this.dir} stayed locked`);
        else await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    try {
      return await fn();
    } finally {
      await unlink(lock).catch(() => undefined);
    }
  }
}

function buildRoot(version: number, expires: string, roles: Record<TufRole, TufRoleKeys>): Root {
  const keys: Record<string, unknown> = {};
  const roleMap: Record<string, unknown> = {};
  for (const name of TUF_ROLES) {
    const spec = roles[name];
    if (!Number.isInteger(spec.threshold) || spec.threshold < 1 || spec.threshold > spec.keys.length)
      throw new MoatError("TUF_THRESHOLD_INVALID", `${name} threshold ${spec.threshold} cannot be met by ${spec.keys.length} key(s)`);
    for (const key of spec.keys) keys[key.keyID] = key.toJSON();
    roleMap[name] = { keyids: spec.keys.map((k) => k.keyID), threshold: spec.threshold };
  }
  // @tufjs/models does not export its Role class, so the root is built from its JSON form (TUF spec §4.3).
  return Root.fromJSON({ _type: "root", spec_version: SPEC_VERSION, version, expires, consistent_snapshot: true, keys, roles: roleMap } as never);
}

/** TUF expiry timestamps carry no fractional seconds (TUF spec §4.2: "YYYY-MM-DDTHH:MM:SSZ"). */
function expiry(now: Date, lifetime: number): string {
  return new Date(now.getTime() + lifetime).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function describeTarget(target: TargetFile): TufTargetInfo {
  return { path: target.path, length: target.length, sha256: target.hashes.sha256!, custom: target.custom };
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}
