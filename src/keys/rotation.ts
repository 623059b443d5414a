import { MoatError } from "../errors.js";
import { parseEnvelopeHeader, type Envelope } from "./envelope.js";
import type { Kek, KekVersionInfo } from "./kek.js";

/** One envelope as stored, with an opaque reference the store uses to write it back. */
export interface SealedBlob {
  /** Opaque row reference (table, column, row id). */
  ref: string;
  /** Where it lives, `table.column`, for reports. */
  location: string;
  blob: Buffer;
}

/**
 * The store port rotation needs: every envelope the database holds, wherever it is stored, found by
 * its "MEV" magic (so a secret column added by any domain is covered without registering it).
 */
export interface SealedBlobStore {
  /** Batches of envelopes; `excludePrefix` skips those whose bytes start with it (already current). */
  scan(options: { excludePrefix?: Buffer; batchSize: number }): AsyncIterable<SealedBlob[]>;
  /** Writes each `next` only if the row still holds `blob.blob` (compare-and-swap); returns how many were written. */
  replace(updates: ReadonlyArray<{ blob: SealedBlob; next: Buffer }>): Promise<number>;
}

/** An unfinished rotation, kept in the store so a second run resumes it instead of starting over. */
export interface RotationState {
  targetId: string;
  targetVersion: number;
  startedAt: string;
  /** Process holding the rotation and until when (ISO); another run waits for it to lapse. */
  owner: string;
  leaseUntil: string;
}

export interface RotationStateStore {
  load(): Promise<RotationState | null>;
  save(state: RotationState | null): Promise<void>;
}

export interface RotationReport {
  target: { id: string; version: number };
  created: boolean;
  resumed: boolean;
  rewrapped: number;
  /** Envelopes that could not be rewrapped (format 1, or a KEK version the provider no longer has). */
  skipped: Array<{ location: string; reason: string }>;
  /** Rows changed by someone else during the run (they are picked up by the next pass). */
  conflicts: number;
  remaining: number;
}

export interface KekUsage extends KekVersionInfo {
  /** How many envelopes in the store are wrapped by this version. */
  envelopes: number;
}

export interface KekStatusReport {
  provider: string;
  versions: KekUsage[];
  /** Envelopes naming a KEK the provider does not hold (unreadable until it is configured again). */
  unknown: Array<{ id: string; version: number; envelopes: number }>;
  /** Format-1 envelopes (readable, not rewrappable). */
  legacyFormat: number;
  rotation: RotationState | null;
}

const LEASE_MS = 60_000;
const BATCH = 500;
const MAX_PASSES = 5;

/** The header prefix every envelope wrapped by `kek` starts with (format 2). */
export function envelopePrefix(kek: { id: string; version: number }): Buffer {
  const id = Buffer.from(kek.id, "utf8");
  const version = Buffer.alloc(4);
  version.writeUInt32BE(kek.version);
  return Buffer.concat([Buffer.from("MEV"), Buffer.from([2, id.length]), id, version]);
}

/**
 * KEK rotation: a new KEK version becomes current (new secrets use it at once, also in a running
 * `moat serve`, whose provider re-reads the key source), then every stored data key is rewrapped
 * under it in batches of compare-and-swap writes. Old versions stay available throughout, so every
 * secret stays readable at every moment; an interrupted run is resumed by the next one; a version is
 * retired only when no envelope uses it.
 */
export class KekRotation {
  constructor(
    private readonly envelope: Envelope,
    private readonly blobs: SealedBlobStore,
    private readonly state: RotationStateStore,
    private readonly progress: (message: string) => void = () => {},
    private readonly owner = `pid ${process.pid}`,
  ) {}

  /** Starts (or resumes) a rotation and rewraps every data key onto the target version. */
  async rotate(options: { createVersion?: boolean } = {}): Promise<RotationReport> {
    const provider = this.envelope.kekProvider;
    const existing = await this.state.load();
    if (existing && existing.owner !== this.owner && Date.parse(existing.leaseUntil) > Date.now())
      throw new MoatError("KEK_ROTATION_IN_PROGRESS", `a KEK rotation to v${existing.targetVersion} is running (${existing.owner}, lease until ${existing.leaseUntil})`);
    let target: Kek;
    let created = false;
    const resumed = existing !== null;
    if (existing) {
      target = await provider.get(existing.targetId, existing.targetVersion);
      this.progress(`resuming the rotation to KEK v${target.version} started ${existing.startedAt}`);
    } else if (options.createVersion ?? true) {
      if (!provider.createVersion)
        throw new MoatError("CONFIG_INVALID", `the ${provider.kind} KEK provider is managed outside Moat: add the new key version there (e.g. MOAT_MASTER_KEY=v1:<old>,v2:<new>), restart, then run moat keys rotate --rewrap-only`);
      target = await provider.createVersion();
      created = true;
      this.progress(`created KEK v${target.version} (${target.id}); new secrets are wrapped by it from now on`);
    } else {
      await provider.refresh?.();
      target = await provider.current();
    }
    const startedAt = existing?.startedAt ?? new Date().toISOString();
    const hold = () => this.state.save({ targetId: target.id, targetVersion: target.version, startedAt, owner: this.owner, leaseUntil: new Date(Date.now() + LEASE_MS).toISOString() });
    await hold();

    const report: RotationReport = { target: { id: target.id, version: target.version }, created, resumed, rewrapped: 0, skipped: [], conflicts: 0, remaining: 0 };
    const prefix = envelopePrefix(target);
    const skippedRefs = new Set<string>();
    for (let pass = 1; pass <= MAX_PASSES; pass++) {
      let changedThisPass = 0;
      let conflictsThisPass = 0;
      for await (const batch of this.blobs.scan({ excludePrefix: prefix, batchSize: BATCH })) {
        const updates: Array<{ blob: SealedBlob; next: Buffer }> = [];
        for (const blob of batch) {
          if (skippedRefs.has(blob.ref)) continue;
          try {
            const next = await this.envelope.rewrap(blob.blob, target);
            if (next) updates.push({ blob, next });
          } catch (error) {
            skippedRefs.add(blob.ref);
            report.skipped.push({ location: blob.location, reason: error instanceof MoatError ? error.code : "unreadable" });
          }
        }
        const written = await this.blobs.replace(updates);
        changedThisPass += written;
        conflictsThisPass += updates.length - written;
        report.rewrapped += written;
        if (written > 0) this.progress(`rewrapped ${report.rewrapped} data keys`);
        await hold();
      }
      report.conflicts += conflictsThisPass;
      // Done when a pass found nothing left to do; a conflict means a row changed under us: look again.
      if (conflictsThisPass === 0 && (changedThisPass === 0 || pass > 1)) break;
    }
    report.remaining = await this.countNotWrappedBy(prefix, skippedRefs);
    if (report.remaining === 0) await this.state.save(null);
    else this.progress(`${report.remaining} envelopes still use an older KEK (written during the run); run moat keys rotate again to finish`);
    return report;
  }

  /** Versions, how many envelopes each wraps, envelopes under unknown KEKs, and any unfinished rotation. */
  async status(): Promise<KekStatusReport> {
    const provider = this.envelope.kekProvider;
    await provider.refresh?.();
    const only = async (): Promise<KekVersionInfo[]> => {
      const kek = await provider.current();
      return [{ id: kek.id, version: kek.version, current: true, location: provider.kind }];
    };
    const versions = provider.versions ? await provider.versions() : await only();
    const counts = new Map<string, number>();
    let legacyFormat = 0;
    for await (const batch of this.blobs.scan({ batchSize: 2000 })) {
      for (const { blob } of batch) {
        try {
          const header = parseEnvelopeHeader(blob);
          if (header.formatVersion === 1) legacyFormat += 1;
          const key = `${header.kekId}\0${header.kekVersion}`;
          counts.set(key, (counts.get(key) ?? 0) + 1);
        } catch {
          // Bytes that merely start with the magic are not envelopes.
        }
      }
    }
    const usage: KekUsage[] = versions.map((v) => ({ ...v, envelopes: counts.get(`${v.id}\0${v.version}`) ?? 0 }));
    for (const v of versions) counts.delete(`${v.id}\0${v.version}`);
    const unknown = [...counts.entries()].map(([key, envelopes]) => {
      const [id, version] = key.split("\0");
      return { id: id!, version: Number(version), envelopes };
    });
    return { provider: provider.kind, versions: usage, unknown, legacyFormat, rotation: await this.state.load() };
  }

  /**
   * Retires every non-current version that no envelope uses (or just `version`). A version that is
   * still in use is refused with KEK_VERSION_IN_USE; nothing is deleted then.
   */
  async retireUnused(version?: number): Promise<number[]> {
    const provider = this.envelope.kekProvider;
    if (!provider.retire) throw new MoatError("CONFIG_INVALID", `the ${provider.kind} KEK provider is managed outside Moat: remove the old version there`);
    const status = await this.status();
    if (status.rotation) throw new MoatError("KEK_ROTATION_IN_PROGRESS", `finish the rotation to v${status.rotation.targetVersion} first (moat keys rotate)`);
    const candidates = status.versions.filter((v) => !v.current && (version === undefined || v.version === version));
    if (version !== undefined) {
      const named = candidates[0];
      if (!named) throw new MoatError("KEK_VERSION_IN_USE", `KEK v${version} is the current version or does not exist`);
      if (named.envelopes > 0) throw new MoatError("KEK_VERSION_IN_USE", `KEK v${version} still wraps ${named.envelopes} data keys; run moat keys rotate first`, { detail: { version, envelopes: named.envelopes } });
    }
    const retired: number[] = [];
    for (const v of candidates) {
      if (v.envelopes > 0) continue;
      await provider.retire(v.id, v.version);
      retired.push(v.version);
      this.progress(`retired KEK v${v.version}`);
    }
    return retired;
  }

  private async countNotWrappedBy(prefix: Buffer, skipped: Set<string>): Promise<number> {
    let count = 0;
    for await (const batch of this.blobs.scan({ excludePrefix: prefix, batchSize: 2000 })) count += batch.filter((blob) => !skipped.has(blob.ref)).length;
    return count;
  }
}
