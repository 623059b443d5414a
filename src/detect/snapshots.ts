/**
 * Periodic snapshots of the metric state, so a restarted server resumes its windows and baselines
 * instead of starting blind. The metrics are per node (each node sees its own devices' traffic), so
 * the snapshot is a file in the node's data dir, written atomically and gzip-compressed (mostly
 * empty buckets compress well); a damaged or foreign file is set aside, never half-loaded.
 */
import { readFile, rename } from "node:fs/promises";
import { gunzipSync, gzipSync } from "node:zlib";
import { writeFileAtomic } from "../lib/atomic-file.js";
import { MetricStore, type MetricSnapshot } from "./metric-store.js";

export const SNAPSHOT_FILE = "detect-metrics.snapshot.gz";

export class MetricSnapshots {
  constructor(private readonly path: string) {}

  async save(store: MetricStore, takenAt: number): Promise<number> {
    const body = gzipSync(Buffer.from(JSON.stringify({ takenAt, metrics: store.snapshot() })));
    await writeFileAtomic(this.path, body, { mode: 0o600 });
    return body.length;
  }

  /** The stored state, or null when there is none; a file that cannot be read is renamed aside. */
  async load(): Promise<{ store: MetricStore; takenAt: number } | null> {
    let raw: Buffer;
    try {
      raw = await readFile(this.path);
    } catch {
      return null;
    }
    try {
      const parsed = JSON.parse(gunzipSync(raw).toString("utf8")) as { takenAt: number; metrics: MetricSnapshot };
      return { store: MetricStore.restore(parsed.metrics), takenAt: Number(parsed.takenAt) };
    } catch {
      await rename(this.path, `${this.path}.unreadable`).catch(() => undefined);
      return null;
    }
  }
}
