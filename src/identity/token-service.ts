import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { MoatError } from "../errors.js";
import type { IdentityStore, OperatorTokenRecord } from "./ports.js";

/** Token string: `moat_<16 hex id>_<43 base64url secret>`; only SHA-256 of the secret is stored. */
const TOKEN_PATTERN = /^moat_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/**
 * The id and secret of an operator token string, or null when it is not one. The secret is
 * base64url, whose alphabet holds `_`, so the string cannot be split on `_`.
 */
export function parseOperatorToken(text: string): { id: string; secret: string } | null {
  const match = TOKEN_PATTERN.exec(text);
  return match ? { id: match[1]!, secret: match[2]! } : null;
}
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Don't write last_used_at on every request. */
const TOUCH_INTERVAL_MS = 60_000;

export type OperatorToken = Omit<OperatorTokenRecord, "secretHash">;

function hashSecret(secret: string): Buffer {
  return createHash("sha256").update(secret).digest();
}

function publicView(record: OperatorTokenRecord): OperatorToken {
  const { secretHash: _secretHash, ...rest } = record;
  return rest;
}

/** Longest lifetime an API token may be given: ten years (rotate long-lived automation tokens sooner). */
export const MAX_TOKEN_LIFETIME_SECONDS = 3650 * 86_400;

export interface CreateTokenInput {
  name: string;
  role: string;
  /** Lifetime in seconds; none means no expiry. */
  expiresInSeconds?: number;
}

/** Operator API tokens: created once and shown once, stored only as a hash, revocable, optionally expiring. */
export class TokenService {
  constructor(
    private readonly store: IdentityStore,
    /** The operator roles that exist (the policy domain owns them). */
    private readonly roleExists: (role: string) => Promise<boolean> | boolean,
  ) {}

  async create(input: CreateTokenInput, actor: string): Promise<{ token: string; record: OperatorToken }> {
    if (typeof input.name !== "string" || !NAME_PATTERN.test(input.name))
      throw new MoatError("VALIDATION_FAILED", `token name ${JSON.stringify(input.name)} is not valid: 1-64 of A-Z a-z 0-9 . _ -`);
    if (typeof input.role !== "string" || !(await this.roleExists(input.role)))
      throw new MoatError("VALIDATION_FAILED", `operator role ${JSON.stringify(input.role)} does not exist`);
    if (input.expiresInSeconds !== undefined && (!Number.isInteger(input.expiresInSeconds) || input.expiresInSeconds < 1 || input.expiresInSeconds > MAX_TOKEN_LIFETIME_SECONDS))
      throw new MoatError("VALIDATION_FAILED", `expiry ${JSON.stringify(input.expiresInSeconds)} is not a whole number of seconds in 1..${MAX_TOKEN_LIFETIME_SECONDS} (ten years)`);
    const id = randomBytes(8).toString("hex");
    const secret = randomBytes(32).toString("base64url");
    const now = new Date();
    const record: OperatorTokenRecord = {
      id,
      name: input.name,
      role: input.role,
      secretHash: hashSecret(secret).toString("hex"),
      createdAt: now.toISOString(),
      createdBy: actor,
      expiresAt: input.expiresInSeconds ? new Date(now.getTime() + input.expiresInSeconds * 1000).toISOString() : null,
      revokedAt: null,
      lastUsedAt: null,
    };
    await this.store.transact(async (uow) => {
      if (await uow.tokens.getByName(record.name)) throw new MoatError("TOKEN_EXISTS", `a token named ${record.name} exists`);
      await uow.tokens.insert(record);
      await uow.events.append({ type: "operator.token_created", actor, subject: record.name, data: { role: record.role, expiresAt: record.expiresAt } });
    });
    return { token: `moat_${id}_${secret}`, record: publicView(record) };
  }

  /** Resolves a presented token; AUTH_TOKEN_INVALID for unknown, malformed, expired or revoked tokens. */
  async authenticate(presented: string): Promise<OperatorToken> {
    const parsed = parseOperatorToken(presented);
    const invalid = () => new MoatError("AUTH_TOKEN_INVALID", "the API token is invalid, expired or revoked");
    if (!parsed) throw invalid();
    const record = await this.store.tokens.getById(parsed.id);
    // Compare even when the id is unknown, so timing does not tell which ids exist.
    const expected = record ? Buffer.from(record.secretHash, "hex") : Buffer.alloc(32);
    const matches = timingSafeEqual(hashSecret(parsed.secret), expected);
    if (!record || !matches || record.revokedAt) throw invalid();
    const now = Date.now();
    if (record.expiresAt && Date.parse(record.expiresAt) <= now) throw invalid();
    if (!record.lastUsedAt || now - Date.parse(record.lastUsedAt) > TOUCH_INTERVAL_MS) {
      const at = new Date(now).toISOString();
      await this.store.tokens.touch(record.id, at).catch(() => {});
      record.lastUsedAt = at;
    }
    return publicView(record);
  }

  /**
   * The token with this id as it stands now, or null once it is revoked, expired or gone. Long-lived
   * uses of an authentication (event streams, dashboard sessions) re-check it with this.
   */
  async current(id: string): Promise<OperatorToken | null> {
    const record = await this.store.tokens.getById(id);
    if (!record || record.revokedAt || (record.expiresAt && Date.parse(record.expiresAt) <= Date.now())) return null;
    return publicView(record);
  }

  async list(): Promise<OperatorToken[]> {
    return (await this.store.tokens.list()).map(publicView);
  }

  async get(name: string): Promise<OperatorToken> {
    const record = await this.store.tokens.getByName(name);
    if (!record) throw new MoatError("TOKEN_NOT_FOUND", `no API token named ${name}`);
    return publicView(record);
  }

  async revoke(name: string, actor: string): Promise<OperatorToken> {
    return this.store.transact(async (uow) => {
      const record = await uow.tokens.getByName(name);
      if (!record) throw new MoatError("TOKEN_NOT_FOUND", `no API token named ${name}`);
      if (record.revokedAt) return publicView(record);
      const updated = { ...record, revokedAt: new Date().toISOString() };
      await uow.tokens.update(updated);
      await uow.events.append({ type: "operator.token_revoked", severity: "low", actor, subject: name });
      await uow.changes.append({ kind: "token.revoked", subject: name, data: {} });
      return publicView(updated);
    });
  }
}
