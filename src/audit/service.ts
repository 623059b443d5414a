import { MoatError } from "../errors.js";
import { ChainVerifier, describeProblem, type ChainEntry } from "./chain.js";
import type { SecurityEvent, SecurityEventInput, SecurityEventSink } from "./events.js";

export interface AuditQuery {
  type?: string;
  subject?: string;
  afterSeq?: number;
  limit?: number;
}

/** What the audit service needs from storage. */
export interface AuditPort {
  /** Appends in a transaction of its own. */
  appendStandalone(event: SecurityEventInput): Promise<void>;
  list(query: AuditQuery): Promise<SecurityEvent[]>;
  /** Streams every entry in seq order, in pages. */
  scan(fromSeq: number, pageSize: number): Promise<ChainEntry[]>;
  head(): Promise<{ seq: number; hash: string }>;
}

export interface VerifyResult {
  ok: boolean;
  entries: number;
  /** The first bad entry's seq, when not ok. */
  firstBadSeq?: number;
  problem?: string;
}

type Listener = (event: SecurityEventInput) => void;

/** Security events: emit (persist + notify listeners), list, and verify the hash chain. */
export class AuditService implements SecurityEventSink {
  private readonly listeners = new Set<Listener>();

  constructor(private readonly port: AuditPort) {}

  async emit(event: SecurityEventInput): Promise<void> {
    await this.port.appendStandalone(event);
    this.notify(event);
  }

  /** Live subscribers (alerts, metrics). Called after the event is persisted. */
  onEvent(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called by the store after a transaction that appended events has committed. */
  notify(event: SecurityEventInput): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A failing listener must not break the emitter; events are already persisted.
      }
    }
  }

  list(query: AuditQuery = {}): Promise<SecurityEvent[]> {
    return this.port.list(query);
  }

  async verify(onProgress?: (checked: number) => void): Promise<VerifyResult> {
    const verifier = new ChainVerifier();
    const pageSize = 5000;
    let from = 0;
    for (;;) {
      const page = await this.port.scan(from, pageSize);
      for (const entry of page) {
        const problem = verifier.check(entry);
        if (problem) return { ok: false, entries: verifier.count, firstBadSeq: problem.seq, problem: describeProblem(problem) };
      }
      onProgress?.(verifier.count);
      if (page.length < pageSize) break;
      from = page[page.length - 1]!.seq;
    }
    const problem = verifier.finish(await this.port.head());
    if (problem) return { ok: false, entries: verifier.count, firstBadSeq: problem.seq, problem: describeProblem(problem) };
    return { ok: true, entries: verifier.count };
  }

  /** Like verify, but throws AUDIT_CHAIN_BROKEN naming the first bad entry. */
  async assertIntact(): Promise<number> {
    const result = await this.verify();
    if (!result.ok) throw new MoatError("AUDIT_CHAIN_BROKEN", `audit log: ${result.problem}`, { detail: { firstBadSeq: result.firstBadSeq } });
    return result.entries;
  }
}
