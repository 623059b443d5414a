import { isMoatError } from "../errors.js";

/**
 * Latency samples of one run and their percentiles (nearest rank: the smallest sample that at least
 * p% of the samples do not exceed, so a reported p99 is a latency that was really observed).
 */
export class LatencyRecorder {
  private readonly samples: number[] = [];
  private sorted = true;

  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.samples.push(ms);
    this.sorted = false;
  }

  get count(): number {
    return this.samples.length;
  }

  /** The p-th percentile (0 < p ≤ 100) in whole milliseconds, or null without samples. */
  percentile(p: number): number | null {
    if (this.samples.length === 0) return null;
    if (!this.sorted) {
      this.samples.sort((a, b) => a - b);
      this.sorted = true;
    }
    const rank = Math.max(1, Math.ceil((p / 100) * this.samples.length));
    return Math.round(this.samples[Math.min(rank, this.samples.length) - 1]!);
  }
}

/** The error code to count an error under: a MoatError's code, a Node system error's code, else INTERNAL. */
export function errorCodeOf(error: unknown): string {
  if (isMoatError(error)) return error.code;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[A-Z0-9_]{2,64}$/.test(code) ? code : "INTERNAL";
}

/** The counters every scenario shares. */
export class RunStats {
  enrolled = 0;
  connected = 0;
  sent = 0;
  received = 0;
  denied = 0;
  readonly latency = new LatencyRecorder();
  readonly errorsByCode: Record<string, number> = {};

  error(error: unknown): string {
    const code = errorCodeOf(error);
    this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + 1;
    return code;
  }
}
