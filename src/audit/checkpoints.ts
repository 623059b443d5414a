import { MoatError } from "../errors.js";
import type { AuditKeys } from "./audit-key.js";
import { entryLeafHash } from "./chain.js";
import { openCheckpoint, signCheckpoint, type Checkpoint } from "./checkpoint.js";
import type { InclusionProof } from "./inclusion-proof.js";
import { consistencyPath, inclusionPath, MissingNodeError, treeRoot, verifyConsistency, verifyInclusion, withStoredNodes, type NodeLookup } from "./merkle.js";
import type { AuditPort, CheckpointRecord } from "./ports.js";
import { parseVerifierKey, type NoteVerifierKey } from "./signed-note.js";
import type { CheckpointWitness } from "./witness.js";

/**
 * Signed tree heads of the audit log: written on a schedule and on demand, kept in the store and
 * handed to the configured witnesses; inclusion proofs relative to them.
 */
export class AuditCheckpoints {
  constructor(
    private readonly port: AuditPort,
    private readonly keys: AuditKeys,
    /** `<trust domain>/moat-audit`. */
    readonly origin: string,
    private readonly witnesses: readonly CheckpointWitness[] = [],
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /**
   * Signs the current tree head and stores it (an unchanged log reuses its latest checkpoint). Before
   * signing, the new head must extend the latest stored checkpoint, so the key never blesses a
   * history rewritten since then. Witness failures are reported after the checkpoint is stored.
   */
  async create(): Promise<CheckpointRecord> {
    const head = await this.port.head();
    if (!head) throw new MoatError("AUDIT_HEAD_MISSING", "the audit log's head row is missing; no checkpoint was signed");
    const latest = await this.port.checkpoints.latest();
    const size = head.seq;
    const root = await this.stored((lookup) => treeRoot(size, lookup));
    if (latest && latest.size === size && latest.rootHash.equals(root)) return latest;
    if (latest) await this.assertExtends(latest, size, root);
    const signer = await this.keys.signer();
    const note = await signCheckpoint({ origin: this.origin, size, rootHash: root }, signer);
    const record: CheckpointRecord = { size, rootHash: root, note, createdAt: this.clock().toISOString() };
    await this.port.checkpoints.save(record);
    await this.publish(record);
    return record;
  }

  /**
   * Signs a checkpoint now and then every `intervalMs` (a log that did not grow keeps its latest one).
   * Returns the function that stops it.
   */
  startSchedule(intervalMs: number, onError: (error: unknown) => void): () => void {
    let running: Promise<unknown> | null = null;
    const run = () => {
      running ??= this.create()
        .catch(onError)
        .finally(() => {
          running = null;
        });
    };
    run();
    const timer = setInterval(run, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** The latest stored checkpoint, its signature checked with `key` (default: the installation's key). */
  async latest(key?: NoteVerifierKey): Promise<{ record: CheckpointRecord; checkpoint: Checkpoint } | null> {
    const record = await this.port.checkpoints.latest();
    if (!record) return null;
    return { record, checkpoint: openCheckpoint(record.note, key ?? parseVerifierKey(await this.keys.verifierKey()), this.origin) };
  }

  /** An inclusion proof of entry `seq` relative to the latest checkpoint that covers it (signed now if none does). */
  async prove(seq: number): Promise<InclusionProof> {
    if (!Number.isSafeInteger(seq) || seq < 1) throw new MoatError("AUDIT_ENTRY_NOT_FOUND", `--seq must be an entry number ≥ 1, not ${seq}`);
    const entry = await this.port.entry(seq);
    if (!entry) throw new MoatError("AUDIT_ENTRY_NOT_FOUND", `the audit log has no entry ${seq}`);
    let record = await this.port.checkpoints.latest();
    if (!record || record.size < seq) record = await this.create();
    const treeSize = record.size;
    const leaf = entryLeafHash(entry);
    const path = await this.stored((lookup) => inclusionPath(seq - 1, treeSize, lookup));
    if (!verifyInclusion(seq - 1, treeSize, leaf, path, record.rootHash))
      throw new MoatError("AUDIT_TREE_MISMATCH", `entry ${seq} is not in the tree the checkpoint of size ${treeSize} signed: the entry or the stored subtrees were changed; run moat audit verify`);
    return {
      seq,
      index: seq - 1,
      treeSize,
      leafHash: leaf.toString("hex"),
      path: path.map((h) => h.toString("hex")),
      rootHash: record.rootHash.toString("hex"),
      checkpoint: record.note,
      entry,
    };
  }

  /** The RFC 9162 consistency proof from `oldSize` to `size`, from the stored subtrees. */
  consistency(oldSize: number, size: number): Promise<Buffer[]> {
    return this.stored((lookup) => consistencyPath(oldSize, size, lookup));
  }

  private async assertExtends(latest: CheckpointRecord, size: number, root: Buffer): Promise<void> {
    if (size < latest.size)
      throw new MoatError("AUDIT_LOG_TRUNCATED", `the log holds ${size} entries but checkpoint ${latest.size} was signed; no checkpoint was signed. Run moat audit verify`);
    const proof = await this.consistency(latest.size, size);
    if (!verifyConsistency(latest.size, size, latest.rootHash, root, proof))
      throw new MoatError("AUDIT_LOG_REWRITTEN", `the log no longer extends checkpoint ${latest.size}; no checkpoint was signed. Run moat audit verify`);
  }

  private async publish(record: CheckpointRecord): Promise<void> {
    const failures: string[] = [];
    for (const witness of this.witnesses) {
      try {
        await witness.publish(record, (oldSize) => this.consistency(oldSize, record.size));
      } catch (error) {
        failures.push((error as Error).message);
      }
    }
    if (failures.length > 0) throw new MoatError("AUDIT_WITNESS_FAILED", `checkpoint ${record.size} is stored, but: ${failures.join("; ")}`);
  }

  private async stored<T>(compute: (lookup: NodeLookup) => T): Promise<T> {
    try {
      return await withStoredNodes(compute, (ids) => this.port.nodes(ids));
    } catch (error) {
      if (error instanceof MissingNodeError) throw new MoatError("AUDIT_TREE_MISMATCH", `the audit tree is incomplete: ${error.message}; run moat audit verify`);
      throw error;
    }
  }
}
