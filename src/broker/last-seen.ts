/**
 * Collects last-seen times and peer addresses in memory and writes them in one batch per interval,
 * so a busy device costs one map update per message, not one database write.
 */
import type { LastSeenEntry, LastSeenWriter } from "./ports.js";

export class LastSeenBatcher {
  private pending = new Map<string, { at: number; address: string | null }>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly writer: LastSeenWriter | null,
    private readonly intervalMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  start(): void {
    if (!this.writer || this.timer) return;
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  touch(deviceId: string, address: string | null, at = Date.now()): void {
    if (!this.writer) return;
    const entry = this.pending.get(deviceId);
    if (entry) {
      entry.at = at;
      if (address) entry.address = address;
    } else {
      this.pending.set(deviceId, { at, address });
    }
  }

  /** Writes what has accumulated; batches never overlap. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (!this.writer || this.pending.size === 0) return;
      const batch: LastSeenEntry[] = [...this.pending].map(([deviceId, e]) => ({ deviceId, at: new Date(e.at).toISOString(), address: e.address }));
      this.pending = new Map();
      try {
        await this.writer.write(batch);
      } catch (err) {
        this.onError(err);
      }
    });
    return this.flushing;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }
}
