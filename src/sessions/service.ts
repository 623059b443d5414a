/** Who is connected now: the live-session record, read by the API, the dashboard and posture checks. */
import { pageLimit } from "../lib/page.js";
import { DEFAULT_HEARTBEAT_MS } from "./recorder.js";
import type { SessionRecord, SessionRepository, TakeoverRecord } from "./ports.js";

export interface SessionServiceOptions {
  /** Sessions of a node not heard from for this long are not counted (default: 4 heartbeats). */
  staleAfterMs?: number;
  now?: () => number;
}

export class SessionService {
  private readonly staleAfterMs: number;
  private readonly now: () => number;

  constructor(
    private readonly repository: SessionRepository,
    options: SessionServiceOptions = {},
  ) {
    this.staleAfterMs = options.staleAfterMs ?? DEFAULT_HEARTBEAT_MS * 4;
    this.now = options.now ?? Date.now;
  }

  private aliveSince(): string {
    return new Date(this.now() - this.staleAfterMs).toISOString();
  }

  /** Live sessions, ordered by session id; page with `after`. */
  list(query: { deviceId?: string; limit?: number; after?: string } = {}): Promise<SessionRecord[]> {
    return this.repository.list({ ...query, limit: pageLimit(query.limit, 100), aliveSince: this.aliveSince() });
  }

  /** How many sessions are live now. */
  count(): Promise<number> {
    return this.repository.count(this.aliveSince());
  }

  /** Client-id takeovers, newest first. */
  takeovers(query: { since?: string; deviceId?: string; limit?: number } = {}): Promise<TakeoverRecord[]> {
    return this.repository.takeovers({ ...query, limit: pageLimit(query.limit, 100) });
  }
}
