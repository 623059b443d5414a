import { MoatError } from "../errors.js";

/** Why a sequence number was refused. */
export type ReplayVerdict = "fresh" | "duplicate" | "too-old";

const BLOCK_BITS = 32;

/**
 * Receiver-side anti-replay window over per-message sequence numbers, as IPsec ESP (RFC 4303
 * §3.4.3) and DTLS (RFC 6347 §4.1.2.6) do it: numbers above the highest seen slide the window
 * forward; numbers inside it are accepted once; numbers below it are too old. The bitmap is a ring
 * of 32-bit blocks so sliding never shifts bits (RFC 6479); one spare block keeps the block being
 * cleared outside the window.
 */
export class ReplayWindow {
  /** How many sequence numbers below the highest one are still accepted (out of order). */
  readonly size: number;
  private readonly blocks: Uint32Array;
  private highest = -1;

  constructor(size = 1024) {
    if (!Number.isInteger(size) || size < BLOCK_BITS || size % BLOCK_BITS !== 0 || size > 1 << 20)
      throw new RangeError(`replay window size must be a multiple of 32 between 32 and 2^20, got ${size}`);
    this.size = size;
    this.blocks = new Uint32Array(size / BLOCK_BITS + 1);
  }

  /** The highest sequence number accepted so far, or -1. */
  get top(): number {
    return this.highest;
  }

  /** Classifies `seq` without recording it (call before spending effort on decryption). */
  check(seq: number): ReplayVerdict {
    assertSequence(seq);
    if (seq > this.highest) return "fresh";
    if (this.highest - seq >= this.size) return "too-old";
    return this.bit(seq) ? "duplicate" : "fresh";
  }

  /**
   * Records `seq` after the message has authenticated; throws COSE_REPLAYED if it was seen or is
   * below the window. Only authenticated numbers may move the window, or a forger could push it.
   */
  accept(seq: number): void {
    const verdict = this.check(seq);
    if (verdict !== "fresh")
      throw new MoatError("COSE_REPLAYED", `sequence number ${seq} is ${verdict === "duplicate" ? "a duplicate" : `older than the replay window (highest ${this.highest}, window ${this.size})`}`, {
        detail: { seq, reason: verdict, highest: this.highest },
      });
    if (seq > this.highest) this.slide(seq);
    const index = Math.floor(seq / BLOCK_BITS) % this.blocks.length;
    this.blocks[index] = this.blocks[index]! | (1 << seq % BLOCK_BITS);
  }

  /** The window as plain data, to be kept across restarts (`ReplayWindow.restore`). */
  snapshot(): ReplayWindowState {
    return { size: this.size, highest: this.highest, blocks: Buffer.from(this.blocks.buffer, this.blocks.byteOffset, this.blocks.byteLength).toString("base64") };
  }

  /** A window exactly as `snapshot` left it; a damaged state is refused, never half-applied. */
  static restore(state: ReplayWindowState): ReplayWindow {
    const window = new ReplayWindow(state.size);
    const bytes = Buffer.from(state.blocks, "base64");
    if (!Number.isSafeInteger(state.highest) || state.highest < -1 || bytes.length !== window.blocks.byteLength)
      throw new MoatError("COSE_REPLAY_STATE_INVALID", "the saved replay window does not match its size");
    for (let i = 0; i < window.blocks.length; i++) window.blocks[i] = bytes.readUInt32LE(i * 4);
    window.highest = state.highest;
    return window;
  }

  private bit(seq: number): boolean {
    const index = Math.floor(seq / BLOCK_BITS) % this.blocks.length;
    return ((this.blocks[index]! >>> seq % BLOCK_BITS) & 1) === 1;
  }

  /** Clears the blocks the window moves over (at most the whole ring). */
  private slide(seq: number): void {
    const fromBlock = this.highest < 0 ? -1 : Math.floor(this.highest / BLOCK_BITS);
    const toBlock = Math.floor(seq / BLOCK_BITS);
    const steps = Math.min(toBlock - fromBlock, this.blocks.length);
    for (let i = 1; i <= steps; i++) this.blocks[(toBlock - steps + i) % this.blocks.length] = 0;
    this.highest = seq;
  }
}

/** A replay window as JSON-safe data: its size, the highest number accepted, the ring bitmap (base64, little-endian 32-bit blocks). */
export interface ReplayWindowState {
  size: number;
  highest: number;
  blocks: string;
}

/** One replay window per sender key id (a new key id after rotation starts a fresh window). */
export class ReplayGuard {
  private readonly windows = new Map<string, ReplayWindow>();
  constructor(private readonly windowSize = 1024) {}

  check(kid: Uint8Array, seq: number): ReplayVerdict {
    return this.windows.get(Buffer.from(kid).toString("hex"))?.check(seq) ?? "fresh";
  }

  accept(kid: Uint8Array, seq: number): void {
    const key = Buffer.from(kid).toString("hex");
    let window = this.windows.get(key);
    if (!window) {
      window = new ReplayWindow(this.windowSize);
      this.windows.set(key, window);
    }
    window.accept(seq);
  }

  /** Every window by key id (hex), to be kept across restarts. */
  snapshot(): Record<string, ReplayWindowState> {
    return Object.fromEntries([...this.windows].map(([kid, window]) => [kid, window.snapshot()]));
  }

  /** A guard with the windows a `snapshot` saved. */
  static restore(windows: Record<string, ReplayWindowState>, windowSize = 1024): ReplayGuard {
    const guard = new ReplayGuard(windowSize);
    for (const [kid, state] of Object.entries(windows)) {
      if (!/^(?:[0-9a-f]{2})+$/.test(kid) || typeof state !== "object" || state === null) throw new MoatError("COSE_REPLAY_STATE_INVALID", "the saved replay state has a malformed entry");
      guard.windows.set(kid, ReplayWindow.restore(state));
    }
    return guard;
  }

  /** Forgets a retired key id's window. */
  forget(kid: Uint8Array): void {
    this.windows.delete(Buffer.from(kid).toString("hex"));
  }
}

function assertSequence(seq: number): void {
  if (!Number.isSafeInteger(seq) || seq < 0) throw new MoatError("COSE_MALFORMED", `sequence number must be a non-negative safe integer, got ${seq}`);
}
