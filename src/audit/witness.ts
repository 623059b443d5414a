import { open } from "node:fs/promises";
import { MoatError } from "../errors.js";
import type { CheckpointRecord } from "./ports.js";

/** Somewhere outside the database that keeps a copy of every checkpoint. */
export interface CheckpointWitness {
  readonly describe: string;
  /**
   * Hands over `record`. `previous` is the size the witness last accepted (0 when unknown) and
   * `proveFrom(size)` gives the RFC 9162 consistency proof from that size to the record's.
   */
  publish(record: CheckpointRecord, proveFrom: (oldSize: number) => Promise<Buffer[]>): Promise<void>;
}

/**
 * An append-only JSON Lines file, one checkpoint per line ({"size","rootHash","createdAt","checkpoint"}),
 * opened in append mode and fsynced. Keep it on other storage than the database (a WORM mount, a
 * synced folder): its last line is what `moat audit verify --checkpoint FILE` checks against.
 */
export function fileWitness(path: string): CheckpointWitness {
  return {
    describe: `file ${path}`,
    async publish(record) {
      const line = `${JSON.stringify({ size: record.size, rootHash: record.rootHash.toString("hex"), createdAt: record.createdAt, checkpoint: record.note })}\n`;
      try {
        const handle = await open(path, "a", 0o600);
        try {
          await handle.appendFile(line, "utf8");
          await handle.sync();
        } finally {
          await handle.close();
        }
      } catch (error) {
        throw new MoatError("AUDIT_WITNESS_FAILED", `could not append the checkpoint to ${path}: ${(error as Error).message}`, { cause: error });
      }
    },
  };
}

/**
 * A witness speaking the C2SP tlog-witness `add-checkpoint` request: `old <size>`, the consistency
 * proof from that size (base64, one hash per line), a blank line, then the checkpoint note. A 409
 * answer carries the size the witness already holds; the request is repeated once from there.
 */
export function httpWitness(url: string, fetchImpl: typeof fetch = fetch): CheckpointWitness {
  let knownSize = 0;
  const post = async (record: CheckpointRecord, oldSize: number, proof: Buffer[]) => {
    const body = `old ${oldSize}\n${proof.map((h) => `${h.toString("base64")}\n`).join("")}\n${record.note}`;
    return fetchImpl(url, { method: "POST", body, headers: { "content-type": "text/plain; charset=utf-8" }, signal: AbortSignal.timeout(10_000) });
  };
  return {
    describe: `witness ${url}`,
    async publish(record, proveFrom) {
      try {
        let oldSize = Math.min(knownSize, record.size);
        let response = await post(record, oldSize, await proveFrom(oldSize));
        if (response.status === 409) {
          const text = (await response.text()).trim();
          const theirs = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
          if (!Number.isSafeInteger(theirs) || theirs > record.size) throw new Error(`the witness holds size ${text.slice(0, 40)}, which this log cannot extend`);
          oldSize = theirs;
          response = await post(record, oldSize, await proveFrom(oldSize));
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        await response.arrayBuffer();
        knownSize = record.size;
      } catch (error) {
        if (error instanceof MoatError) throw error;
        throw new MoatError("AUDIT_WITNESS_FAILED", `the witness at ${url} did not take checkpoint ${record.size}: ${(error as Error).message}`, { cause: error });
      }
    },
  };
}

/**
 * The checkpoint in a file: the signed note itself, or a witness file (JSON Lines) whose last line
 * carries the latest one.
 */
export function checkpointFromFile(text: string): string {
  if (!text.trimStart().startsWith("{")) return text;
  const last = text.trim().split("\n").at(-1)!;
  try {
    const record = JSON.parse(last) as { checkpoint?: unknown };
    if (typeof record.checkpoint === "string") return record.checkpoint;
  } catch {
    // Reported below.
  }
  throw new MoatError("AUDIT_NOTE_MALFORMED", "the witness file's last line is not a {\"checkpoint\": …} record");
}
