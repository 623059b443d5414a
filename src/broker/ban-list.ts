/**
 * Counts failed connects per key (a client id or a peer address) in a sliding window and bans a key
 * for a while once it reaches the limit, which slows password and token guessing to a crawl.
 */
export interface BanListOptions {
  limit: number;
  windowMs: number;
  banMs: number;
  /** Bound on tracked keys so a flood of random client ids cannot grow memory without limit. */
  maxKeys?: number;
  now?: () => number;
}

interface Entry {
  failures: number[];
  bannedUntil: number;
}

export class BanList {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly maxKeys: number;

  constructor(private readonly options: BanListOptions) {
    this.now = options.now ?? Date.now;
    this.maxKeys = options.maxKeys ?? 100_000;
  }

  /** Milliseconds left on the key's ban, or 0 when it is not banned. */
  bannedFor(key: string): number {
    const entry = this.entries.get(key);
    if (!entry) return 0;
    const left = entry.bannedUntil - this.now();
    return left > 0 ? left : 0;
  }

  /** Records a failure; returns true when this failure started a ban. */
  recordFailure(key: string): boolean {
    const now = this.now();
    let entry = this.entries.get(key);
    if (!entry) {
      if (this.entries.size >= this.maxKeys) this.evict(now);
      entry = { failures: [], bannedUntil: 0 };
      this.entries.set(key, entry);
    }
    if (entry.bannedUntil > now) return false;
    const since = now - this.options.windowMs;
    entry.failures = entry.failures.filter((t) => t > since);
    entry.failures.push(now);
    if (entry.failures.length >= this.options.limit) {
      entry.failures = [];
      entry.bannedUntil = now + this.options.banMs;
      return true;
    }
    return false;
  }

  /** A success clears the failure history of the key (never an active ban). */
  recordSuccess(key: string): void {
    const entry = this.entries.get(key);
    if (entry && entry.bannedUntil <= this.now()) this.entries.delete(key);
  }

  private evict(now: number): void {
    for (const [key, entry] of this.entries) {
      if (entry.bannedUntil <= now && entry.failures.every((t) => t <= now - this.options.windowMs)) this.entries.delete(key);
    }
    // Still full: drop the oldest inserted keys rather than refuse to count.
    while (this.entries.size >= this.maxKeys) {
      const first = this.entries.keys().next().value;
      if (first === undefined) break;
      this.entries.delete(first);
    }
  }
}
