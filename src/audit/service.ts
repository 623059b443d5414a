import { MoatError } from "../errors.js";
import type { Checkpoint } from "./checkpoint.js";
import type { SecurityEvent, SecurityEventInput, SecurityEventSink } from "./events.js";
import { pageLimit } from "../lib/page.js";
import { verifyLog, type VerifyResult } from "./log-verifier.js";
import type { AuditPort, AuditQuery } from "./ports.js";

type Listener = (event: SecurityEventInput) => void;

/** Security events: emit (persist + notify listeners), list, and verify the log. */
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

  async list(query: AuditQuery = {}): Promise<SecurityEvent[]> {
    return this.port.list({ ...query, limit: pageLimit(query.limit, 100) });
  }

  /** Entries with seq > afterSeq, oldest first (timelines, `moat events tail`); at most a page. */
  async entriesAfter(afterSeq: number, limit = 1000): Promise<SecurityEvent[]> {
    return (await this.port.scan(afterSeq, pageLimit(limit, 1000))) as SecurityEvent[];
  }

  /** The sequence number of the newest entry (0 for an empty log). */
  async headSeq(): Promise<number> {
    return (await this.port.head())?.seq ?? 0;
  }

  /**
   * Recomputes the chain and the Merkle tree from the entries; with a checkpoint (already
   * signature-checked by the caller), also proves the log extends it.
   */
  verify(options: { checkpoint?: Checkpoint | null; onProgress?: (checked: number) => void } = {}): Promise<VerifyResult> {
    return verifyLog(this.port, options.checkpoint ?? null, options.onProgress);
  }

  /** Like verify, but throws the first problem's code. */
  async assertIntact(): Promise<number> {
    const result = await this.verify();
    if (!result.ok) throw new MoatError(result.code ?? "AUDIT_CHAIN_BROKEN", `audit log: ${result.problem}`, { detail: { firstBadSeq: result.firstBadSeq } });
    return result.entries;
  }
}
