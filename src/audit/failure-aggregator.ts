/**
 * Failures from unauthenticated peers (`auth.failed`: bad MQTT credentials, bad API tokens, refused EST
 * enrollments) are aggregated before they reach the audit log, so an outsider cannot flood it: per source
 * address and failure kind, the first failure is written in full; after it, at most one summary row per
 * window (10 s) carries how many failures there were and how many distinct client ids they tried. A source
 * that stays quiet for a whole window starts afresh (its next failure is written in full again).
 *
 * The raw in-process event stream (`AuditService.onEvent`, which detection reads) still sees every
 * single failure; only what is appended to the log is aggregated. Every other event passes straight through.
 */
import type { SecurityEventInput, SecurityEventSink } from "./events.js";

/** The audit service as the aggregator needs it: append-and-notify, and notify alone. */
export interface AuditEventStream extends SecurityEventSink {
  /** Hands an event to live listeners without appending it to the log. */
  notify(event: SecurityEventInput): void;
}

export interface FailureAggregatorOptions {
  windowMs?: number;
  /** Bound on tracked (address, kind) pairs; past it, new pairs share one overflow entry per kind. */
  maxSources?: number;
  /** Bound on the distinct client ids remembered per window (the count says "at least" past it). */
  maxClientIds?: number;
  now?: () => number;
  /** Where a failed append is reported (the caller's logger); a lost summary must not crash the caller. */
  onError?: (error: unknown) => void;
}

/** The type every aggregated row has, beside the full `auth.failed` rows. */
export const FAILURE_SUMMARY_TYPE = "auth.failed.summary";
export const DEFAULT_FAILURE_WINDOW_MS = 10_000;
const OVERFLOW_ADDRESS = "*";

interface Source {
  address: string;
  kind: string;
  /** Start of the current window. */
  since: number;
  count: number;
  clientIds: Set<string>;
  severity: SecurityEventInput["severity"];
  timer: ReturnType<typeof setTimeout> | null;
}

/** The source address and failure kind of an `auth.failed` event, or null for any other event. */
export function failureKey(event: SecurityEventInput): { address: string; kind: string; clientId: string | null } | null {
  if (event.type !== "auth.failed") return null;
  const data = event.data ?? {};
  const address = typeof data.address === "string" && data.address !== "" ? data.address : "unknown";
  const channel = String(data.protocol ?? data.channel ?? "unknown");
  const reason = String(data.reason ?? "unknown");
  const clientId = typeof data.clientId === "string" ? data.clientId : event.subject && event.subject !== address ? event.subject : null;
  return { address, kind: `${channel}:${reason}`, clientId };
}

export class FailureAggregator implements SecurityEventSink {
  private readonly sources = new Map<string, Source>();
  private readonly windowMs: number;
  private readonly maxSources: number;
  private readonly maxClientIds: number;
  private readonly now: () => number;
  private readonly pending = new Set<Promise<void>>();

  constructor(
    private readonly stream: AuditEventStream,
    private readonly options: FailureAggregatorOptions = {},
  ) {
    this.windowMs = options.windowMs ?? DEFAULT_FAILURE_WINDOW_MS;
    this.maxSources = options.maxSources ?? 10_000;
    this.maxClientIds = options.maxClientIds ?? 1_000;
    this.now = options.now ?? Date.now;
  }

  /** Appends the event, or for an unauthenticated failure after its first, counts it into the next summary. */
  async emit(event: SecurityEventInput): Promise<void> {
    const key = failureKey(event);
    if (key === null) return this.stream.emit(event);
    let id = `${key.address}\u0000${key.kind}`;
    let source = this.sources.get(id);
    if (source === undefined && this.sources.size >= this.maxSources) {
      id = `${OVERFLOW_ADDRESS}\u0000${key.kind}`;
      source = this.sources.get(id);
    }
    if (source === undefined) {
      const address = id.startsWith(`${OVERFLOW_ADDRESS}\u0000`) ? OVERFLOW_ADDRESS : key.address;
      this.sources.set(id, { address, kind: key.kind, since: this.now(), count: 0, clientIds: new Set(), severity: event.severity, timer: this.schedule(id) });
      return this.stream.emit(event);
    }
    source.count += 1;
    if (key.clientId !== null && source.clientIds.size < this.maxClientIds) source.clientIds.add(key.clientId);
    this.stream.notify(event);
  }

  /** Writes every summary that is due or pending (at shutdown) and forgets all sources. */
  async flush(): Promise<void> {
    for (const id of [...this.sources.keys()]) this.closeWindow(id, true);
    await Promise.all([...this.pending]);
  }

  private schedule(id: string): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => this.closeWindow(id, false), this.windowMs);
    timer.unref?.();
    return timer;
  }

  /** Ends a source's window: a summary when it counted anything (and a new window), else the source is forgotten. */
  private closeWindow(id: string, final: boolean): void {
    const source = this.sources.get(id);
    if (!source) return;
    if (source.timer) clearTimeout(source.timer);
    const now = this.now();
    if (source.count > 0) {
      const summary: SecurityEventInput = {
        type: FAILURE_SUMMARY_TYPE,
        severity: source.severity ?? "medium",
        actor: `address:${source.address}`,
        subject: source.address,
        data: {
          address: source.address,
          kind: source.kind,
          count: source.count,
          distinctClientIds: source.clientIds.size,
          ...(source.clientIds.size >= this.maxClientIds ? { distinctClientIdsAtLeast: true } : {}),
          from: new Date(source.since).toISOString(),
          to: new Date(now).toISOString(),
        },
      };
      const written = this.stream.emit(summary).catch((error: unknown) => this.options.onError?.(error));
      this.pending.add(written);
      void written.finally(() => this.pending.delete(written));
    }
    if (final || source.count === 0) {
      this.sources.delete(id);
      return;
    }
    source.since = now;
    source.count = 0;
    source.clientIds = new Set();
    source.timer = this.schedule(id);
  }
}
