/**
 * Per-device behaviour metrics over sliding windows (10 s, 60 s, 300 s, 1 h), in bounded memory.
 *
 * Every device owns a slot in a few shared typed arrays (no per-device objects, no arrays of samples):
 * each window is a ring of buckets (10 s = 5 × 2 s, 60 s = 6 × 10 s, 300 s = 5 × 60 s, 1 h = 12 × 5 min),
 * so a window's value is exact to within one bucket width. An event adds to the current bucket of each
 * ring; a bucket is zeroed lazily when time moves past it. Message sizes go into a fixed log₂
 * histogram per bucket (10 bins, 32 B … > 8 KiB) from which p50/p90/p99 are read. Distinct source
 * addresses and distinct denied topic filters are kept as a few (hash, last-seen) pairs per device. The
 * 10 s window has counters only; its size quantiles are those of the newest 10 s bucket of the 60 s ring.
 */

export const WINDOWS = ["10s", "60s", "300s", "1h"] as const;
export type WindowName = (typeof WINDOWS)[number];
export const WINDOW_MS: Record<WindowName, number> = { "10s": 10_000, "60s": 60_000, "300s": 300_000, "1h": 3_600_000 };

/** Bucket width and count of each window's ring, in WINDOWS order. */
const LEVELS = [
  { width: 2_000, count: 5 },
  { width: 10_000, count: 6 },
  { width: 60_000, count: 5 },
  { width: 300_000, count: 12 },
] as const;
const LEVEL_OFFSET = [0, 5, 11, 16];
const WINDOW_LEVEL: Record<WindowName, number> = { "10s": 0, "60s": 1, "300s": 2, "1h": 3 };
const BUCKETS = 28;
/** Histograms exist for the 60 s, 300 s and 1 h rings (buckets 5 … 27). */
const HIST_FIRST_BUCKET = 5;
const HIST_BUCKETS = BUCKETS - HIST_FIRST_BUCKET;

/** Counters that can be large (32-bit, saturating). */
export const WIDE = { messagesSent: 0, messagesReceived: 1, bytesSent: 2 } as const;
/** Counters of rare events (16-bit, saturating: a detection threshold is far below 65,535). */
export const NARROW = { authFailures: 0, deniedPublishes: 1, connectAttempts: 2, connectFailures: 3, disconnects: 4 } as const;
const WIDE_N = 3;
const NARROW_N = 5;
export const SIZE_BINS = 10;
/** Upper bound (bytes) of each histogram bin but the last, which is open. */
const BIN_UPPER = [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192];
const ADDRESS_SLOTS = 4;
const DENIED_SLOTS = 16;

/** Per slot: first seen (s), last event (s), group index, 10 s buckets folded into the rate EWMA. */
const INFO_N = 4;
/** Per slot: EWMA of messages sent per 10 s, EWMA of the 300 s p99 message size. */
const EWMA_N = 2;
const EWMA_TAU_MS = 3_600_000;

export type CounterName = keyof typeof WIDE | keyof typeof NARROW;
export const COUNTERS = [...Object.keys(WIDE), ...Object.keys(NARROW)] as CounterName[];

/** A device's metrics over one window. */
export interface WindowMetrics {
  messagesSent: number;
  messagesReceived: number;
  bytesSent: number;
  authFailures: number;
  deniedPublishes: number;
  deniedTopics: number;
  connectAttempts: number;
  connectFailures: number;
  disconnects: number;
  sourceAddresses: number;
  sizeP50: number | null;
  sizeP90: number | null;
  sizeP99: number | null;
}

/** A 32-bit FNV-1a hash: enough to tell a handful of topics or addresses apart. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0 || 1;
}

function binOf(bytes: number): number {
  for (let i = 0; i < BIN_UPPER.length; i++) if (bytes <= BIN_UPPER[i]!) return i;
  return SIZE_BINS - 1;
}

function grow<T extends Uint32Array | Uint16Array | Float32Array>(array: T, size: number): T {
  const next = new (array.constructor as new (n: number) => T)(size);
  next.set(array);
  return next;
}

export class MetricStore {
  private capacity = 0;
  private wide = new Uint32Array(0);
  private narrow = new Uint16Array(0);
  private hist = new Uint16Array(0);
  /** Newest bucket number held by each ring (0: none). */
  private epochs = new Uint32Array(0);
  private info = new Uint32Array(0);
  private ewma = new Float32Array(0);
  private addresses = new Uint32Array(0);
  /** Denied topic filters: allocated only for devices that were ever denied. */
  private readonly denied = new Map<number, Uint32Array>();
  private readonly slots = new Map<string, number>();
  private readonly ids: string[] = [];
  private readonly groups: string[] = [""];
  private readonly groupIndex = new Map<string, number>([["", 0]]);

  constructor(initialCapacity = 1024) {
    this.ensure(initialCapacity);
  }

  get size(): number {
    return this.ids.length;
  }

  private ensure(capacity: number): void {
    if (capacity <= this.capacity) return;
    // Grow by a quarter: the arrays of 100,000 devices must not carry twice that many slots.
    const next = Math.max(capacity, Math.ceil(this.capacity * 1.25));
    this.wide = grow(this.wide, next * BUCKETS * WIDE_N);
    this.narrow = grow(this.narrow, next * BUCKETS * NARROW_N);
    this.hist = grow(this.hist, next * HIST_BUCKETS * SIZE_BINS);
    this.epochs = grow(this.epochs, next * LEVELS.length);
    this.info = grow(this.info, next * INFO_N);
    this.ewma = grow(this.ewma, next * EWMA_N);
    this.addresses = grow(this.addresses, next * ADDRESS_SLOTS * 2);
    this.capacity = next;
  }

  /** The device's slot, created on first sight. */
  slotOf(deviceId: string, now: number): number {
    let slot = this.slots.get(deviceId);
    if (slot === undefined) {
      slot = this.ids.length;
      this.ensure(slot + 1);
      this.ids.push(deviceId);
      this.slots.set(deviceId, slot);
      this.info[slot * INFO_N] = Math.floor(now / 1000);
    }
    return slot;
  }

  has(deviceId: string): boolean {
    return this.slots.has(deviceId);
  }

  deviceIds(): readonly string[] {
    return this.ids;
  }

  setGroup(deviceId: string, group: string | null, now: number): void {
    const name = group ?? "";
    let index = this.groupIndex.get(name);
    if (index === undefined) {
      index = this.groups.length;
      this.groups.push(name);
      this.groupIndex.set(name, index);
    }
    this.info[this.slotOf(deviceId, now) * INFO_N + 2] = index;
  }

  groupOf(deviceId: string): string | null {
    const slot = this.slots.get(deviceId);
    return slot === undefined ? null : this.groups[this.info[slot * INFO_N + 2]!] || null;
  }

  /** Milliseconds since the device was first seen. */
  historyMs(deviceId: string, now: number): number {
    const slot = this.slots.get(deviceId);
    return slot === undefined ? 0 : now - this.info[slot * INFO_N]! * 1000;
  }

  /** Moves every ring of the slot to `now`, zeroing buckets time has passed. */
  private advance(slot: number, now: number): void {
    for (let level = 0; level < LEVELS.length; level++) {
      const { width, count } = LEVELS[level]!;
      const bucket = Math.floor(now / width);
      const e = slot * LEVELS.length + level;
      const last = this.epochs[e]!;
      if (bucket <= last) continue;
      if (level === 1 && last !== 0) this.foldEwma(slot, last, bucket);
      const steps = last === 0 ? count : Math.min(count, bucket - last);
      for (let k = 1; k <= steps; k++) this.clearBucket(slot, LEVEL_OFFSET[level]! + ((bucket - steps + k) % count));
      this.epochs[e] = bucket;
    }
  }

  /** Folds the finished 10 s buckets into the device's rate baseline (EWMA over an hour), empty ones included. */
  private foldEwma(slot: number, last: number, bucket: number): void {
    const finished = this.wide[(slot * BUCKETS + LEVEL_OFFSET[1]! + (last % 6)) * WIDE_N + WIDE.messagesSent]!;
    const alpha = 1 - Math.exp(-10_000 / EWMA_TAU_MS);
    const i = slot * EWMA_N;
    let value = this.ewma[i]! + alpha * (finished - this.ewma[i]!);
    // The buckets skipped over were empty.
    const empty = Math.min(bucket - last - 1, 10_000);
    if (empty > 0) value *= Math.pow(1 - alpha, empty);
    this.ewma[i] = value;
    const folds = slot * INFO_N + 3;
    this.info[folds] = Math.min(1_000_000, this.info[folds]! + 1 + Math.max(0, empty));
  }

  private clearBucket(slot: number, bucket: number): void {
    const b = slot * BUCKETS + bucket;
    this.wide.fill(0, b * WIDE_N, (b + 1) * WIDE_N);
    this.narrow.fill(0, b * NARROW_N, (b + 1) * NARROW_N);
    if (bucket >= HIST_FIRST_BUCKET) {
      const h = (slot * HIST_BUCKETS + bucket - HIST_FIRST_BUCKET) * SIZE_BINS;
      this.hist.fill(0, h, h + SIZE_BINS);
    }
  }

  private current(slot: number, level: number): number {
    return LEVEL_OFFSET[level]! + (this.epochs[slot * LEVELS.length + level]! % LEVELS[level]!.count);
  }

  private touch(deviceId: string, now: number): number {
    const slot = this.slotOf(deviceId, now);
    this.advance(slot, now);
    this.info[slot * INFO_N + 1] = Math.floor(now / 1000);
    return slot;
  }

  addWide(deviceId: string, counter: keyof typeof WIDE, amount: number, now: number): number {
    const slot = this.touch(deviceId, now);
    for (let level = 0; level < LEVELS.length; level++) {
      const i = (slot * BUCKETS + this.current(slot, level)) * WIDE_N + WIDE[counter];
      this.wide[i] = Math.min(0xffffffff, this.wide[i]! + amount);
    }
    return slot;
  }

  addNarrow(deviceId: string, counter: keyof typeof NARROW, now: number): number {
    const slot = this.touch(deviceId, now);
    for (let level = 0; level < LEVELS.length; level++) {
      const i = (slot * BUCKETS + this.current(slot, level)) * NARROW_N + NARROW[counter];
      if (this.narrow[i]! < 0xffff) this.narrow[i]!++;
    }
    return slot;
  }

  /** One publish by the device: count, bytes and size histogram. */
  published(deviceId: string, bytes: number, now: number): void {
    const slot = this.addWide(deviceId, "messagesSent", 1, now);
    for (let level = 0; level < LEVELS.length; level++) {
      const i = (slot * BUCKETS + this.current(slot, level)) * WIDE_N + WIDE.bytesSent;
      this.wide[i] = Math.min(0xffffffff, this.wide[i]! + bytes);
    }
    const bin = binOf(bytes);
    for (let level = 1; level < LEVELS.length; level++) {
      const h = (slot * HIST_BUCKETS + this.current(slot, level) - HIST_FIRST_BUCKET) * SIZE_BINS + bin;
      if (this.hist[h]! < 0xffff) this.hist[h]!++;
    }
  }

  delivered(deviceId: string, now: number): void {
    this.addWide(deviceId, "messagesReceived", 1, now);
  }

  /** A source address the device connected (or tried to) from. */
  sawAddress(deviceId: string, address: string, now: number): void {
    const slot = this.touch(deviceId, now);
    this.remember(this.addresses, slot * ADDRESS_SLOTS * 2, ADDRESS_SLOTS, hash32(address), Math.floor(now / 1000));
  }

  /** A publish or subscription the policy refused, by topic filter. */
  deniedTopic(deviceId: string, topic: string, now: number): void {
    const slot = this.addNarrow(deviceId, "deniedPublishes", now);
    let table = this.denied.get(slot);
    if (!table) this.denied.set(slot, (table = new Uint32Array(DENIED_SLOTS * 2)));
    this.remember(table, 0, DENIED_SLOTS, hash32(topic), Math.floor(now / 1000));
  }

  /** Keeps (hash, last seen) pairs; a new hash replaces the entry seen longest ago. */
  private remember(table: Uint32Array, base: number, n: number, hash: number, second: number): void {
    let oldest = 0;
    for (let k = 0; k < n; k++) {
      const at = base + k * 2;
      if (table[at] === hash) {
        table[at + 1] = second;
        return;
      }
      if (table[at + 1]! < table[base + oldest * 2 + 1]!) oldest = k;
    }
    table[base + oldest * 2] = hash;
    table[base + oldest * 2 + 1] = second;
  }

  private distinct(table: Uint32Array | undefined, base: number, n: number, since: number): number {
    if (!table) return 0;
    let count = 0;
    for (let k = 0; k < n; k++) if (table[base + k * 2] !== 0 && table[base + k * 2 + 1]! >= since) count++;
    return count;
  }

  /** Indices (ring positions) of the buckets of `level` that fall inside its window at `now`. */
  private liveBuckets(slot: number, level: number, now: number): number[] {
    const { width, count } = LEVELS[level]!;
    const newest = this.epochs[slot * LEVELS.length + level]!;
    const bucket = Math.floor(now / width);
    const out: number[] = [];
    if (newest === 0) return out;
    for (let b = Math.max(newest - count + 1, bucket - count + 1); b <= newest; b++) out.push(LEVEL_OFFSET[level]! + (b % count));
    return out;
  }

  /** One counter over a window, without building the whole view (the hot path of the rules). */
  counter(deviceId: string, counter: CounterName, window: WindowName, now: number): number {
    const slot = this.slots.get(deviceId);
    if (slot === undefined) return 0;
    const level = WINDOW_LEVEL[window];
    const { width, count } = LEVELS[level]!;
    const newest = this.epochs[slot * LEVELS.length + level]!;
    if (newest === 0) return 0;
    const wide = counter in WIDE;
    const index = wide ? WIDE[counter as keyof typeof WIDE] : NARROW[counter as keyof typeof NARROW];
    let sum = 0;
    // No array is built: this runs on every publish.
    for (let b = Math.max(newest - count + 1, Math.floor(now / width) - count + 1); b <= newest; b++) {
      const bucket = slot * BUCKETS + LEVEL_OFFSET[level]! + (b % count);
      sum += wide ? this.wide[bucket * WIDE_N + index]! : this.narrow[bucket * NARROW_N + index]!;
    }
    return sum;
  }

  distinctDenied(deviceId: string, window: WindowName, now: number): number {
    const slot = this.slots.get(deviceId);
    return slot === undefined ? 0 : this.distinct(this.denied.get(slot), 0, DENIED_SLOTS, Math.floor((now - WINDOW_MS[window]) / 1000) + 1);
  }

  distinctAddresses(deviceId: string, window: WindowName, now: number): number {
    const slot = this.slots.get(deviceId);
    return slot === undefined ? 0 : this.distinct(this.addresses, slot * ADDRESS_SLOTS * 2, ADDRESS_SLOTS, Math.floor((now - WINDOW_MS[window]) / 1000) + 1);
  }

  /** The message-size quantile `q` (0…1) over a window, or null with no messages. */
  sizeQuantile(deviceId: string, window: WindowName, q: number, now: number): number | null {
    const slot = this.slots.get(deviceId);
    if (slot === undefined) return null;
    const bins = new Array<number>(SIZE_BINS).fill(0);
    const level = Math.max(1, WINDOWS.indexOf(window));
    const buckets = window === "10s" ? this.liveBuckets(slot, 1, now).slice(-1) : this.liveBuckets(slot, level, now);
    for (const b of buckets) {
      const h = (slot * HIST_BUCKETS + b - HIST_FIRST_BUCKET) * SIZE_BINS;
      for (let k = 0; k < SIZE_BINS; k++) bins[k]! += this.hist[h + k]!;
    }
    return quantileOf(bins, q);
  }

  /** The device's baseline: EWMA of messages sent per 10 s over about an hour. */
  rateBaseline(deviceId: string): number {
    const slot = this.slots.get(deviceId);
    if (slot === undefined) return 0;
    // Bias-corrected: an EWMA started at zero underestimates until it has seen about one time constant.
    const folds = this.info[slot * INFO_N + 3]!;
    if (folds === 0) return 0;
    const alpha = 1 - Math.exp(-10_000 / EWMA_TAU_MS);
    return this.ewma[slot * EWMA_N]! / (1 - Math.pow(1 - alpha, folds));
  }

  /** The device's message-size baseline (EWMA of its 300 s p99, updated by the caller). */
  sizeBaseline(deviceId: string): number {
    const slot = this.slots.get(deviceId);
    return slot === undefined ? 0 : this.ewma[slot * EWMA_N + 1]!;
  }

  updateSizeBaseline(deviceId: string, p99: number, alpha: number): void {
    const slot = this.slots.get(deviceId);
    if (slot === undefined) return;
    const i = slot * EWMA_N + 1;
    this.ewma[i] = this.ewma[i] === 0 ? p99 : this.ewma[i]! + alpha * (p99 - this.ewma[i]!);
  }

  /** Every metric of one window. */
  view(deviceId: string, window: WindowName, now: number): WindowMetrics {
    const c = (name: CounterName) => this.counter(deviceId, name, window, now);
    return {
      messagesSent: c("messagesSent"),
      messagesReceived: c("messagesReceived"),
      bytesSent: c("bytesSent"),
      authFailures: c("authFailures"),
      deniedPublishes: c("deniedPublishes"),
      deniedTopics: this.distinctDenied(deviceId, window, now),
      connectAttempts: c("connectAttempts"),
      connectFailures: c("connectFailures"),
      disconnects: c("disconnects"),
      sourceAddresses: this.distinctAddresses(deviceId, window, now),
      sizeP50: this.sizeQuantile(deviceId, window, 0.5, now),
      sizeP90: this.sizeQuantile(deviceId, window, 0.9, now),
      sizeP99: this.sizeQuantile(deviceId, window, 0.99, now),
    };
  }

  /** Bytes held by the typed arrays and the denied-topic tables (what a snapshot writes). */
  heldBytes(): number {
    let total = 0;
    for (const a of [this.wide, this.narrow, this.hist, this.epochs, this.info, this.ewma, this.addresses]) total += a.byteLength;
    return total + this.denied.size * DENIED_SLOTS * 8;
  }

  // --- snapshots ---

  /** The whole state as one JSON-safe object (typed arrays as base64), trimmed to the slots in use. */
  snapshot(): MetricSnapshot {
    const n = this.ids.length;
    const b64 = (a: Uint32Array | Uint16Array | Float32Array, perSlot: number) => Buffer.from(a.buffer, a.byteOffset, n * perSlot * a.BYTES_PER_ELEMENT).toString("base64");
    return {
      version: 1,
      ids: [...this.ids],
      groups: [...this.groups],
      wide: b64(this.wide, BUCKETS * WIDE_N),
      narrow: b64(this.narrow, BUCKETS * NARROW_N),
      hist: b64(this.hist, HIST_BUCKETS * SIZE_BINS),
      epochs: b64(this.epochs, LEVELS.length),
      info: b64(this.info, INFO_N),
      ewma: b64(this.ewma, EWMA_N),
      addresses: b64(this.addresses, ADDRESS_SLOTS * 2),
      denied: [...this.denied].map(([slot, table]) => [slot, Buffer.from(table.buffer, table.byteOffset, table.byteLength).toString("base64")]),
    };
  }

  /** A store holding a snapshot's state; throws on a snapshot whose arrays do not fit its ids. */
  static restore(snapshot: MetricSnapshot): MetricStore {
    if (snapshot?.version !== 1 || !Array.isArray(snapshot.ids) || !Array.isArray(snapshot.groups)) throw new Error("not a metric snapshot of version 1");
    const n = snapshot.ids.length;
    const store = new MetricStore(Math.max(1024, n));
    const load = <T extends Uint32Array | Uint16Array | Float32Array>(target: T, text: string, perSlot: number): void => {
      const bytes = Buffer.from(text, "base64");
      if (bytes.length !== n * perSlot * target.BYTES_PER_ELEMENT) throw new Error("metric snapshot arrays do not match its device count");
      const copy = new Uint8Array(bytes);
      target.set(new (target.constructor as new (b: ArrayBuffer) => T)(copy.buffer));
    };
    load(store.wide, snapshot.wide, BUCKETS * WIDE_N);
    load(store.narrow, snapshot.narrow, BUCKETS * NARROW_N);
    load(store.hist, snapshot.hist, HIST_BUCKETS * SIZE_BINS);
    load(store.epochs, snapshot.epochs, LEVELS.length);
    load(store.info, snapshot.info, INFO_N);
    load(store.ewma, snapshot.ewma, EWMA_N);
    load(store.addresses, snapshot.addresses, ADDRESS_SLOTS * 2);
    snapshot.ids.forEach((id, slot) => {
      store.ids.push(String(id));
      store.slots.set(String(id), slot);
    });
    store.groups.length = 0;
    store.groupIndex.clear();
    snapshot.groups.forEach((g, i) => {
      store.groups.push(String(g));
      store.groupIndex.set(String(g), i);
    });
    for (const [slot, text] of snapshot.denied ?? []) {
      const bytes = new Uint8Array(Buffer.from(text, "base64"));
      if (slot >= 0 && slot < n && bytes.length === DENIED_SLOTS * 8) store.denied.set(slot, new Uint32Array(bytes.buffer));
    }
    return store;
  }
}

export interface MetricSnapshot {
  version: 1;
  ids: string[];
  groups: string[];
  wide: string;
  narrow: string;
  hist: string;
  epochs: string;
  info: string;
  ewma: string;
  addresses: string;
  denied: [number, string][];
}

/** A quantile from the log₂ histogram, interpolated inside its bin (the open last bin reports its lower bound × 2). */
export function quantileOf(bins: readonly number[], q: number): number | null {
  const total = bins.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let k = 0; k < bins.length; k++) {
    const count = bins[k]!;
    if (count === 0) continue;
    if (seen + count >= rank) {
      const lower = k === 0 ? 0 : BIN_UPPER[k - 1]!;
      const upper = k < BIN_UPPER.length ? BIN_UPPER[k]! : lower * 2;
      return Math.round(lower + ((rank - seen) / count) * (upper - lower));
    }
    seen += count;
  }
  return BIN_UPPER[BIN_UPPER.length - 1]! * 2;
}
