// Reconnection and retry pacing. "Full jitter" exponential backoff: the n-th wait is drawn uniformly
// from [0, min(max, base * 2^n)], so a fleet that lost its broker at the same instant comes back spread
// out instead of in one wave.

export interface BackoffOptions {
  /** First ceiling, milliseconds (default 1,000). */
  initialMs?: number;
  /** Largest ceiling, milliseconds (default 60,000). */
  maxMs?: number;
  /** Random source in [0, 1) (tests may fix it). */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = Math.max(1, options.initialMs ?? 1_000);
    this.maxMs = Math.max(this.initialMs, options.maxMs ?? 60_000);
    this.random = options.random ?? Math.random;
  }

  /** The wait before the next attempt; each call widens the window. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.floor(this.random() * ceiling);
  }

  /** After a success the next failure starts small again. */
  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
