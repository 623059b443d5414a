/**
 * The live security event stream behind `GET /v1/events/stream` (server-sent events). It follows the raw
 * in-process stream (`AuditService.onEvent`: every single event, before the failure aggregation that only
 * the log sees) and fans it out to each connected operator, filtered by what the operator may read.
 *
 * A client never holds the server back: each one writes into its own response stream, and a client whose
 * unsent bytes pass the bound is dropped (it reconnects and reads what it missed from the audit log).
 * A client's token is checked again on every heartbeat, and a `token.revoked` change ends its streams at
 * once, whichever process revoked it.
 */
import { PassThrough } from "node:stream";
import type { SecurityEventInput } from "../audit/index.js";
import type { Change } from "../change-feed.js";
import { MoatError } from "../errors.js";
import type { OperatorToken } from "../identity/index.js";

/**
 * The read permission an event type falls under: an operator sees an event when a role of its token grants
 * that permission. Types are matched by their first dotted part; everything else (authentication failures,
 * bans, denials, broker limits, configuration warnings) is security log content, under `audit:read`.
 */
const READ_PERMISSION_BY_DOMAIN: Readonly<Record<string, string>> = {
  device: "devices:read",
  credential: "devices:read",
  cert: "certs:read",
  ca: "certs:read",
  crl: "certs:read",
  enroll_token: "certs:read",
  operator: "tokens:read",
  role: "roles:read",
  firmware: "firmware:read",
  tuf: "firmware:read",
  ota: "ota:read",
  scan: "scans:read",
};

/** The permission that lets an operator see events of this type on the stream. */
export function readPermissionFor(type: string): string {
  return READ_PERMISSION_BY_DOMAIN[type.split(".")[0] ?? ""] ?? "audit:read";
}

// The filter is the audit domain's, shared with `moat events tail` (which reads the log without a server).
export { EVENT_TYPE_FILTER_PATTERN, matchesFilter, type EventStreamFilter } from "../audit/index.js";
import { matchesFilter, type EventStreamFilter } from "../audit/index.js";

export interface EventStreamPorts {
  audit: { onEvent(listener: (event: SecurityEventInput) => void): () => void };
  /** Follows the change feed (in-process pushes and rows other processes wrote). */
  changes: { subscribe(listener: (change: Change) => void): () => void };
  /** Whether the token (by id) still authenticates: not revoked, not expired. */
  stillValid(operator: OperatorToken): Promise<boolean>;
  /** Whether the token's roles grant the permission. */
  allows(operator: OperatorToken, action: string): boolean;
}

export interface EventStreamOptions {
  heartbeatMs?: number;
  /** Unsent bytes one client may hold before it is dropped. */
  maxBufferedBytes?: number;
  /** Concurrent streams per process. */
  maxClients?: number;
  now?: () => Date;
}

interface Client {
  operator: OperatorToken;
  filter: EventStreamFilter;
  out: PassThrough;
  /** Permission answers per event domain, so a busy stream does not re-evaluate roles per event. */
  allowed: Map<string, boolean>;
  nextId: number;
}

export const DEFAULT_HEARTBEAT_MS = 15_000;
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
export const DEFAULT_MAX_STREAM_CLIENTS = 256;

export class EventStreamHub {
  private readonly clients = new Set<Client>();
  private stopFollowing: (() => void) | null = null;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private readonly heartbeatMs: number;
  private readonly maxBufferedBytes: number;
  private readonly maxClients: number;
  private readonly now: () => Date;
  /** Streams dropped for falling behind (exported for tests and metrics). */
  dropped = 0;

  constructor(
    private readonly ports: EventStreamPorts,
    options: EventStreamOptions = {},
  ) {
    this.heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.maxClients = options.maxClients ?? DEFAULT_MAX_STREAM_CLIENTS;
    this.now = options.now ?? (() => new Date());
  }

  get size(): number {
    return this.clients.size;
  }

  /**
   * Opens a stream for an authenticated operator. The returned stream is the response body; it ends when
   * the token is revoked or expires, and is destroyed when the client falls too far behind.
   */
  open(operator: OperatorToken, filter: EventStreamFilter): PassThrough {
    if (this.clients.size >= this.maxClients) throw new MoatError("EVENT_STREAM_BUSY", `this server already serves ${this.maxClients} event streams; try again later`);
    const out = new PassThrough();
    const client: Client = { operator, filter, out, allowed: new Map(), nextId: 1 };
    this.clients.add(client);
    out.once("close", () => this.remove(client));
    // `retry` tells EventSource how long to wait before reconnecting; the comment opens the stream at once.
    out.write(`retry: 3000\n: connected ${this.now().toISOString()}\n\n`);
    this.follow();
    return out;
  }

  /** Ends every stream (server shutdown). */
  close(): void {
    for (const client of [...this.clients]) this.end(client, "server closing");
    this.unfollow();
  }

  private follow(): void {
    if (this.stopFollowing) return;
    const stopEvents = this.ports.audit.onEvent((event) => this.publish(event));
    const stopChanges = this.ports.changes.subscribe((change) => {
      if (change.kind === "token.revoked") this.endToken(change.subject);
    });
    this.stopFollowing = () => {
      stopEvents();
      stopChanges();
    };
    this.heartbeat = setInterval(() => void this.beat(), this.heartbeatMs);
    this.heartbeat.unref();
  }

  private unfollow(): void {
    this.stopFollowing?.();
    this.stopFollowing = null;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private remove(client: Client): void {
    this.clients.delete(client);
    if (this.clients.size === 0) this.unfollow();
  }

  private publish(event: SecurityEventInput): void {
    const time = this.now().toISOString();
    for (const client of this.clients) {
      if (!this.sees(client, event) || !matchesFilter(event, client.filter)) continue;
      const payload = { type: event.type, severity: event.severity ?? "info", actor: event.actor ?? "system", subject: event.subject ?? "", data: event.data ?? {}, time };
      this.write(client, `id: ${client.nextId++}\ndata: ${JSON.stringify(payload)}\n\n`);
    }
  }

  private sees(client: Client, event: SecurityEventInput): boolean {
    const permission = readPermissionFor(event.type);
    let allowed = client.allowed.get(permission);
    if (allowed === undefined) {
      allowed = this.ports.allows(client.operator, permission);
      client.allowed.set(permission, allowed);
    }
    return allowed;
  }

  /** Writes without waiting; a client whose unsent bytes pass the bound is dropped, never waited for. */
  private write(client: Client, chunk: string): void {
    if (client.out.destroyed) return;
    if (client.out.writableLength + client.out.readableLength + chunk.length > this.maxBufferedBytes) {
      this.dropped++;
      // With an error, the server destroys the connection (a clean end would first wait for the backlog).
      client.out.destroy(new Error("event stream client fell behind; dropped"));
      return;
    }
    client.out.write(chunk);
  }

  private end(client: Client, reason: string): void {
    if (client.out.destroyed || client.out.writableEnded) return;
    client.out.end(`event: end\ndata: ${JSON.stringify({ reason })}\n\n`);
    this.clients.delete(client);
  }

  private endToken(name: string): void {
    for (const client of [...this.clients]) if (client.operator.name === name) this.end(client, "token revoked");
  }

  /** A comment line keeps proxies from closing an idle stream; the token is re-checked at the same pace. */
  private async beat(): Promise<void> {
    const at = this.now().toISOString();
    for (const client of [...this.clients]) {
      // Roles may have changed since the last beat: decide again from now on.
      client.allowed.clear();
      // A check that cannot be made ends the stream: the client reconnects and authenticates afresh.
      const valid = await this.ports.stillValid(client.operator).catch(() => false);
      if (!valid) this.end(client, "token revoked or expired");
      else this.write(client, `: heartbeat ${at}\n\n`);
    }
  }
}
