import { randomBytes } from "node:crypto";
import { closeSync, existsSync, fstatSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { MoatError } from "../errors.js";
import { writeFileAtomicSync } from "../lib/atomic-file.js";
import { softwareKek, type Kek, type KekProvider, type KekVersionInfo } from "./kek.js";

export const KEK_FILE = "kek.key";

function decodeKek(text: string, source: string): Buffer {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) throw new MoatError("KEK_INVALID", `the KEK in ${source} is not base64`);
  return Buffer.from(trimmed, "base64");
}

/**
 * Parses a KEK ring: either one bare base64 line (version 1, as `moat init` writes it) or lines
 * `v<N> <base64>` (after rotation). Blank lines and `#` comments are ignored.
 */
export function parseKekRing(text: string, source: string): Map<number, Buffer> {
  const ring = new Map<number, Buffer>();
  const lines = text.split("\n").map((line) => line.trim()).filter((line) => line && !line.startsWith("#"));
  if (lines.length === 1 && !lines[0]!.includes(" ") && !/^v\d+:/.test(lines[0]!)) {
    ring.set(1, decodeKek(lines[0]!, source));
    return ring;
  }
  for (const line of lines) {
    const match = /^v(\d{1,9})[ :](\S+)$/.exec(line.replace(/\s+/g, " "));
    if (!match) throw new MoatError("KEK_INVALID", `${source}: a KEK line must be 'v<N> <base64>'`);
    const version = Number(match[1]);
    if (version < 1 || ring.has(version)) throw new MoatError("KEK_INVALID", `${source}: KEK version ${version} is invalid or repeated`);
    ring.set(version, decodeKek(match[2]!, source));
  }
  if (ring.size === 0) throw new MoatError("KEK_INVALID", `${source} holds no KEK`);
  return ring;
}

function formatKekRing(ring: Map<number, Buffer>): string {
  const lines = [...ring.entries()].sort((a, b) => a[0] - b[0]).map(([version, key]) => `v${version} ${key.toString("base64")}`);
  return `# Moat key-encryption keys; the highest version wraps new data keys. Keep this file secret (mode 600).\n${lines.join("\n")}\n`;
}

/**
 * Creates the KEK file (32 random bytes, base64, mode 0600). Refuses to overwrite an existing one:
 * losing the KEK makes every secret in the store unreadable.
 */
export function createKekFile(dataDir: string): string {
  const path = join(dataDir, KEK_FILE);
  // A second init can never replace the key, and a crash never leaves an empty key file behind.
  writeFileAtomicSync(path, randomBytes(32).toString("base64") + "\n", { replace: false });
  return path;
}

function readKekFile(path: string): { ring: Map<number, Buffer>; mtimeMs: number } {
  if (!existsSync(path)) throw new MoatError("KEK_MISSING", `the KEK file ${path} is missing (set MOAT_MASTER_KEY if the KEK is kept elsewhere); nothing was decrypted`);
  const fd = openSync(path, "r");
  try {
    const stat = fstatSync(fd);
    const mode = stat.mode & 0o777;
    if (mode & 0o077) throw new MoatError("KEK_INVALID", `the KEK file ${path} has mode ${mode.toString(8)}; it must be 600 (chmod 600 ${path})`);
    return { ring: parseKekRing(readFileSync(fd, "utf8"), path), mtimeMs: stat.mtimeMs };
  } finally {
    closeSync(fd);
  }
}

/**
 * Runs `fn` holding an exclusive lock file beside the KEK file (O_EXCL create), so two processes
 * rotating at once cannot both write "version N+1" and lose one of the keys. A lock left by a
 * crashed process is taken over after a minute.
 */
function withRingLock<T>(path: string, fn: () => T): T {
  const lock = `${path}.lock`;
  for (let attempt = 0; ; attempt++) {
    try {
      closeSync(openSync(lock, "wx", 0o600));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      let age = 0;
      try {
        age = Date.now() - statSync(lock).mtimeMs;
      } catch {
        continue;
      }
      if (age > 60_000) rmSync(lock, { force: true });
      else if (attempt >= 50) throw new MoatError("KEK_ROTATION_IN_PROGRESS", `another process is changing ${path} (lock ${lock}); try again`);
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** How often `current()` looks for a rotation done by another process. */
const RECHECK_MS = 1000;

/** A provider over a ring of software KEK versions (file or environment). */
class SoftwareRingProvider implements KekProvider {
  private keks: Kek[] = [];
  private checkedAt = 0;
  private mtimeMs = -1;

  constructor(
    readonly kind: string,
    private readonly location: string,
    private readonly load: () => { ring: Map<number, Buffer>; mtimeMs: number },
    private readonly save: ((change: (ring: Map<number, Buffer>) => void) => void) | null,
  ) {
    this.reload(true);
  }

  async current(): Promise<Kek> {
    if (Date.now() - this.checkedAt > RECHECK_MS) this.reload(false);
    return this.keks.at(-1)!;
  }

  async get(id: string, version: number): Promise<Kek> {
    let kek = this.find(id, version);
    if (!kek) {
      this.reload(true);
      kek = this.find(id, version);
    }
    if (!kek) {
      const held = this.keks.map((k) => `${k.id} v${k.version}`).join(", ");
      throw new MoatError("KEK_MISMATCH", `this envelope was wrapped by KEK ${id} v${version}, but the configured KEKs are ${held}`);
    }
    return kek;
  }

  async versions(): Promise<KekVersionInfo[]> {
    this.reload(true);
    const latest = this.keks.at(-1);
    return this.keks.map((kek) => ({ id: kek.id, version: kek.version, current: kek === latest, location: this.location }));
  }

  async refresh(): Promise<void> {
    this.reload(true);
  }

  get createVersion(): (() => Promise<Kek>) | undefined {
    const save = this.save;
    if (!save) return undefined;
    return async () => {
      save((ring) => ring.set(Math.max(...ring.keys()) + 1, randomBytes(32)));
      this.reload(true);
      return this.keks.at(-1)!;
    };
  }

  get retire(): ((id: string, version: number) => Promise<void>) | undefined {
    const save = this.save;
    if (!save) return undefined;
    return async (id: string, version: number) => {
      save((ring) => {
        const key = ring.get(version);
        if (!key || softwareKek(key, this.kind, version).id !== id) return;
        if (version === Math.max(...ring.keys())) throw new MoatError("KEK_VERSION_IN_USE", `KEK v${version} is the current version and cannot be retired`);
        ring.delete(version);
        key.fill(0);
      });
      this.reload(true);
    };
  }

  private find(id: string, version: number): Kek | undefined {
    return this.keks.find((kek) => kek.id === id && kek.version === version);
  }

  private reload(force: boolean): void {
    this.checkedAt = Date.now();
    if (!force && this.save) {
      // Cheap change check for the file: only re-read when it was replaced.
      try {
        if (statSync(this.location).mtimeMs === this.mtimeMs) return;
      } catch {
        /* fall through to the full read, which reports the problem */
      }
    }
    const { ring, mtimeMs } = this.load();
    this.mtimeMs = mtimeMs;
    this.keks = [...ring.entries()].sort((a, b) => a[0] - b[0]).map(([version, key]) => softwareKek(key, this.kind, version));
  }
}

/**
 * The KEK file in the data dir. Missing → KEK_MISSING; readable by others → KEK_INVALID. It holds one
 * or more versions; `createVersion` (rotation) and `retire` rewrite it atomically with mode 0600.
 */
export function fileKekProvider(dataDir: string): KekProvider {
  const path = join(dataDir, KEK_FILE);
  const change = (edit: (ring: Map<number, Buffer>) => void) =>
    withRingLock(path, () => {
      // Re-read under the lock: another process may have added a version since we loaded.
      const { ring } = readKekFile(path);
      edit(ring);
      writeFileAtomicSync(path, formatKekRing(ring));
    });
  return new SoftwareRingProvider("file", path, () => readKekFile(path), change);
}

/**
 * The KEK from MOAT_MASTER_KEY: base64 of 32 bytes, or `v1:<base64>,v2:<base64>` while rotating.
 * Moat cannot add versions to the environment: the operator adds `v<N+1>:<new key>`, restarts, and
 * runs `moat keys rotate` to rewrap onto it.
 */
export function envKekProvider(masterKey: string): KekProvider {
  const ring = parseKekRing(masterKey.split(",").join("\n"), "MOAT_MASTER_KEY");
  return new SoftwareRingProvider("env", "MOAT_MASTER_KEY", () => ({ ring: new Map(ring), mtimeMs: 0 }), null);
}
