/**
 * Dashboard sessions: a browser logs in once with an operator API token and then holds only a random
 * session id in an HttpOnly cookie. The server keeps sessions in memory, keyed by the SHA-256 of the id
 * (a leaked session table or heap dump gives no usable cookie), each with its own CSRF token.
 *
 * Sessions are per process: a restart, or another node, asks the operator to log in again. A session ends
 * on logout, after 8 hours without a request, and at once when its token is revoked (the change feed's
 * `token.revoked`, and a re-check of the token on every request, which also catches expiry).
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Change } from "../../change-feed.js";
import type { OperatorToken } from "../../identity/index.js";

export const SESSION_COOKIE = "moat_session";
export const CSRF_HEADER = "x-csrf-token";
export const SESSION_IDLE_MS = 8 * 3600_000;
const MAX_SESSIONS = 10_000;

interface Session {
  tokenId: string;
  tokenName: string;
  csrf: string;
  lastUsedAt: number;
}

export interface DashboardSessionPorts {
  /** The token as it stands now, or null once revoked or expired. */
  current(tokenId: string): Promise<OperatorToken | null>;
  changes: { subscribe(listener: (change: Change) => void): () => void };
}

const hashId = (id: string): string => createHash("sha256").update(id).digest("hex");

export class DashboardSessions {
  private readonly sessions = new Map<string, Session>();
  private stopFollowing: (() => void) | null = null;

  constructor(
    private readonly ports: DashboardSessionPorts,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts a session for an authenticated token; returns the cookie value and the CSRF token (both shown once). */
  create(operator: OperatorToken): { id: string; csrf: string } {
    this.follow();
    this.sweep();
    if (this.sessions.size >= MAX_SESSIONS) {
      // Full: the least recently used session makes room (Map keeps insertion order; touch re-inserts).
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    const id = randomBytes(32).toString("base64url");
    const csrf = randomBytes(32).toString("base64url");
    this.sessions.set(hashId(id), { tokenId: operator.id, tokenName: operator.name, csrf, lastUsedAt: this.now() });
    return { id, csrf };
  }

  /** The session's operator and CSRF token, or null when the session is unknown, idle too long or its token is gone. */
  async resolve(id: string): Promise<{ operator: OperatorToken; csrf: string } | null> {
    const key = hashId(id);
    const session = this.sessions.get(key);
    if (!session) return null;
    if (this.now() - session.lastUsedAt > SESSION_IDLE_MS) {
      this.sessions.delete(key);
      return null;
    }
    const operator = await this.ports.current(session.tokenId);
    if (!operator) {
      this.endToken(session.tokenName);
      return null;
    }
    session.lastUsedAt = this.now();
    this.sessions.delete(key);
    this.sessions.set(key, session);
    return { operator, csrf: session.csrf };
  }

  /** Constant-time comparison of a presented CSRF token with the session's. */
  static csrfMatches(expected: string, presented: string | undefined): boolean {
    if (typeof presented !== "string") return false;
    const a = createHash("sha256").update(expected).digest();
    const b = createHash("sha256").update(presented).digest();
    return timingSafeEqual(a, b);
  }

  end(id: string): void {
    this.sessions.delete(hashId(id));
  }

  get size(): number {
    return this.sessions.size;
  }

  close(): void {
    this.stopFollowing?.();
    this.stopFollowing = null;
    this.sessions.clear();
  }

  private endToken(name: string): void {
    for (const [key, session] of this.sessions) if (session.tokenName === name) this.sessions.delete(key);
  }

  private follow(): void {
    if (this.stopFollowing) return;
    this.stopFollowing = this.ports.changes.subscribe((change) => {
      if (change.kind === "token.revoked") this.endToken(change.subject);
    });
  }

  private sweep(): void {
    const cutoff = this.now() - SESSION_IDLE_MS;
    for (const [key, session] of this.sessions) if (session.lastUsedAt < cutoff) this.sessions.delete(key);
  }
}

/** The value of one cookie in a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
