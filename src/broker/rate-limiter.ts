/**
 * A token bucket per client: `ratePerSecond` tokens refill continuously up to `burst`; a publish takes
 * one. Over the limit the publish is dropped; a client that keeps pushing is disconnected.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  /** Drops in a row since the last publish that fitted. */
  consecutiveDrops = 0;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Takes a token; false means over the limit. */
  take(): boolean {
    const now = this.now();
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.ratePerSecond) / 1000);
      this.last = now;
    }
    if (this.tokens >= 1) {
      this.tokens -= 1;
      this.consecutiveDrops = 0;
      return true;
    }
    this.consecutiveDrops += 1;
    return false;
  }
}
