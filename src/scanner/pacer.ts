/**
 * Bounds what the scanner puts on the network: at most `concurrency` connections open at once and
 * at most `ratePerSecond` new ones per second (a token bucket with a 50 ms burst), and nothing new
 * once the run's signal aborts (the overall time limit).
 */
export interface PacerOptions {
  concurrency: number;
  ratePerSecond: number;
  signal: AbortSignal;
}

export class Pacer {
  private active = 0;
  private tokens: number;
  private readonly burst: number;
  private lastRefill = performance.now();
  private readonly waiters: Array<(granted: boolean) => void> = [];
  private timer: NodeJS.Timeout | null = null;
  /** Connections started so far (for reports and tests). */
  started = 0;

  constructor(private readonly options: PacerOptions) {
    this.burst = Math.max(1, Math.min(options.concurrency, Math.ceil(options.ratePerSecond / 20)));
    this.tokens = this.burst;
    options.signal.addEventListener("abort", () => this.drain(), { once: true });
  }

  /** Waits for a connection slot and a rate token; resolves false once the run is aborted. */
  acquire(): Promise<boolean> {
    if (this.options.signal.aborted) return Promise.resolve(false);
    if (this.waiters.length === 0 && this.tryTake()) return Promise.resolve(true);
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.pump();
    });
  }

  /** Takes a slot and a token now if both are free and nobody is queued; never waits. */
  tryAcquire(): boolean {
    if (this.options.signal.aborted || this.waiters.length > 0) return false;
    return this.tryTake();
  }

  get aborted(): boolean {
    return this.options.signal.aborted;
  }

  release(): void {
    this.active--;
    this.pump();
  }

  /** Runs `fn` inside a slot; returns undefined without running it when the run was aborted. */
  async run<T>(fn: () => Promise<T>): Promise<T | undefined> {
    if (!(await this.acquire())) return undefined;
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  private tryTake(): boolean {
    if (this.active >= this.options.concurrency) return false;
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    this.active++;
    this.started++;
    return true;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.lastRefill) * this.options.ratePerSecond) / 1000);
    this.lastRefill = now;
  }

  private pump(): void {
    while (this.waiters.length > 0 && this.tryTake()) this.waiters.shift()!(true);
    if (this.waiters.length > 0 && this.active < this.options.concurrency && this.timer === null) {
      // Out of tokens: wake when the next one is due.
      const wait = Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.options.ratePerSecond));
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, wait);
    }
  }

  private drain(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const waiter of this.waiters.splice(0)) waiter(false);
  }
}
