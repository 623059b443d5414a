/**
 * Keeps the table of live MQTT sessions from the data plane's own events: `device.connected` opens a
 * row, `device.disconnected` removes it. Any data plane that emits those events (the embedded broker,
 * an external one wired to the same event sink) is covered without this domain knowing it.
 *
 * A node that crashes never reports its disconnects, so each recording process marks the nodes it has
 * seen alive with a heartbeat; readers count only sessions of nodes heard from recently, and every
 * recorder deletes the rows of nodes that stopped beating (at start and on each beat).
 */
import { randomUUID } from "node:crypto";
import type { SecurityEventInput } from "../audit/index.js";
import type { SessionRepository } from "./ports.js";

/** The in-process event stream (`AuditService.onEvent`): every event after it was persisted. */
export interface SessionEventStream {
  onEvent(listener: (event: SecurityEventInput) => void): () => void;
}

export interface SessionRecorderOptions {
  /** How often the recorder's nodes are marked alive. Default 15 s. */
  heartbeatMs?: number;
  /** A node not heard from for this long counts as gone. Default 4 heartbeats. */
  staleAfterMs?: number;
  onError?: (error: unknown) => void;
  now?: () => number;
}

export const DEFAULT_HEARTBEAT_MS = 15_000;
/** Session ids whose end was seen, kept so a `connected` that arrives late is not recorded after its end. */
const ENDED_MEMORY = 10_000;

function text(value: unknown): string | null {
  return typeof value === "string" && value.length > 0 ? value.slice(0, 256) : null;
}

export class SessionRecorder {
  /** The node id used for events that name none (a data plane that does not report its node). */
  readonly ownNodeId = randomUUID();
  private readonly nodes = new Set<string>();
  private readonly ended = new Set<string>();
  private queue: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly heartbeatMs: number;
  private readonly staleAfterMs: number;
  private readonly now: () => number;

  constructor(
    private readonly repository: SessionRepository,
    private readonly options: SessionRecorderOptions = {},
  ) {
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.staleAfterMs = options.staleAfterMs ?? this.heartbeatMs * 4;
    this.now = options.now ?? Date.now;
  }

  /** Clears rows of dead nodes, then follows the stream. Call before the data plane accepts connections. */
  async start(stream: SessionEventStream): Promise<void> {
    await this.repository.sweep(new Date(this.now() - this.staleAfterMs).toISOString());
    this.unsubscribe = stream.onEvent((event) => this.take(event));
    this.timer = setInterval(() => void this.beat(), this.heartbeatMs);
    this.timer.unref();
  }

  /** Applies one event (in arrival order, one at a time). */
  take(event: SecurityEventInput): void {
    if (event.type !== "device.connected" && event.type !== "device.disconnected") return;
    this.queue = this.queue.then(() => this.apply(event)).catch((error: unknown) => this.options.onError?.(error));
  }

  /** Settles once every event taken so far is written. */
  settled(): Promise<void> {
    return this.queue;
  }

  private async apply(event: SecurityEventInput): Promise<void> {
    const data = event.data ?? {};
    const sessionId = text(data.session);
    const deviceId = text(event.subject);
    // Without a session id a row could never be matched to its end: such events are not recorded.
    if (!sessionId || !deviceId) return;
    const nodeId = text(data.node) ?? this.ownNodeId;
    const at = new Date(this.now()).toISOString();
    if (event.type === "device.disconnected") {
      this.remember(sessionId);
      await this.repository.close(sessionId);
      return;
    }
    if (this.ended.has(sessionId)) return;
    // The repository creates the node's record with its first session; beats keep it alive from then on.
    this.nodes.add(nodeId);
    const record = {
      sessionId,
      deviceId,
      clientId: text(data.clientId) ?? deviceId,
      nodeId,
      address: text(data.address),
      listener: text(data.listener),
      method: text(data.method),
      certSerial: text(data.serial),
      credentialId: text(data.credential),
      connectedAt: at,
    };
    const aliveSince = new Date(this.now() - this.staleAfterMs).toISOString();
    const others = await this.repository.othersWithClientId(record.clientId, sessionId, aliveSince);
    const replaced = data.replaced && typeof data.replaced === "object" ? (data.replaced as Record<string, unknown>) : null;
    const previous = others.map((o) => ({ session: o.sessionId, address: o.address, node: o.nodeId }));
    // The data plane saw the takeover itself (on one node the old session's disconnect comes first).
    const replacedId = replaced ? text(replaced.session) : null;
    if (replacedId && !previous.some((p) => p.session === replacedId)) previous.push({ session: replacedId, address: text(replaced!.address), node: nodeId });
    for (const old of previous)
      await this.repository.recordTakeover({
        at,
        clientId: record.clientId,
        deviceId,
        previousSession: old.session,
        previousAddress: old.address,
        previousNode: old.node,
        session: sessionId,
        address: record.address,
        nodeId,
      });
    await this.repository.open(record);
  }

  private remember(sessionId: string): void {
    this.ended.add(sessionId);
    if (this.ended.size > ENDED_MEMORY) this.ended.delete(this.ended.values().next().value!);
  }

  /** Marks this recorder's nodes alive and removes the rows of nodes that stopped beating. */
  async beat(): Promise<void> {
    try {
      const at = this.now();
      if (this.nodes.size > 0) await this.repository.heartbeat([...this.nodes], new Date(at).toISOString());
      await this.repository.sweep(new Date(at - this.staleAfterMs).toISOString());
    } catch (error) {
      this.options.onError?.(error);
    }
  }

  /** Stops following the stream and removes this process's sessions: a stopped node holds none. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.queue;
    for (const node of this.nodes) await this.repository.dropNode(node).catch((error: unknown) => this.options.onError?.(error));
    this.nodes.clear();
  }
}
