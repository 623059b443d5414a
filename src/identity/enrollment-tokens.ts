/**
 * One-time EST enrollment tokens (RFC 7030 §3.2.3 leaves the HTTP authentication to us): made for one
 * device, shown once, stored only as the SHA-256 of their secret part, expiring, and consumed by the
 * PKI in the same transaction as the certificate they pay for, so a refused CSR leaves the token unused.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { MoatError } from "../errors.js";
import type { EnrollmentTokenRecord, IdentityStore, IdentityUnitOfWork } from "./ports.js";

const TOKEN_PREFIX = "moat-et";
/** `moat-et_<16 hex id>_<43 base64url secret>`; the secret's alphabet contains `_`, so parse with this, never split. */
const TOKEN_PATTERN = /^moat-et_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

/** The id and secret of an enrollment token string, or null when it does not have a token's form. */
export function parseEnrollmentToken(text: string): { id: string; secret: string } | null {
  const match = TOKEN_PATTERN.exec(text);
  return match ? { id: match[1]!, secret: match[2]! } : null;
}
export const DEFAULT_ENROLL_TOKEN_TTL_MS = 3_600_000;
const MAX_ENROLL_TOKEN_TTL_MS = 30 * 86_400_000;

const sha256 = (text: string): Buffer => createHash("sha256").update(text).digest();

const invalid = () => new MoatError("PKI_ENROLL_TOKEN_INVALID", "the enrollment token is not valid");

export class EnrollmentTokenService {
  constructor(
    private readonly store: IdentityStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Creates a single-use token for an active or pending device; the token is returned once. */
  async create(deviceId: string, ttlMs: number, actor: string): Promise<{ token: string; record: EnrollmentTokenRecord }> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_ENROLL_TOKEN_TTL_MS)
      throw new MoatError("PKI_DURATION_INVALID", `enrollment token TTL must be between 1 second and 30 days`);
    const id = randomBytes(8).toString("hex");
    const secret = randomBytes(32).toString("base64url");
    const now = this.now();
    const record: EnrollmentTokenRecord = {
      id,
      deviceId,
      secretHash: sha256(secret).toString("hex"),
      createdAt: now.toISOString(),
      createdBy: actor,
      expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
      usedAt: null,
    };
    await this.store.transact(async (uow) => {
      const device = await uow.devices.get(deviceId);
      if (!device) throw new MoatError("DEVICE_NOT_FOUND", `no device ${deviceId}`);
      if (device.status !== "active" && device.status !== "pending")
        throw new MoatError("PKI_DEVICE_NOT_ELIGIBLE", `device ${deviceId} is ${device.status}; only active or pending devices can enroll`);
      await uow.enrollmentTokens.insert(record);
      await uow.events.append({ type: "enroll_token.created", actor, subject: deviceId, data: { tokenId: id, expiresAt: record.expiresAt } });
    });
    return { token: `${TOKEN_PREFIX}_${id}_${secret}`, record };
  }

  list(deviceId?: string): Promise<EnrollmentTokenRecord[]> {
    return this.store.enrollmentTokens.list(deviceId);
  }

  /** Refuses a string that does not have a token's form, without a lookup. */
  checkForm(token: string): void {
    if (!parseEnrollmentToken(token)) throw invalid();
  }

  /**
   * Consumes `token` inside the caller's transaction and returns the device it was made for. Unknown,
   * used and expired tokens are refused with their own codes; a concurrent redemption loses the race.
   */
  async redeemIn(uow: Pick<IdentityUnitOfWork, "enrollmentTokens">, token: string): Promise<string> {
    const parsed = parseEnrollmentToken(token);
    if (!parsed) throw invalid();
    const { id, secret } = parsed;
    const record = await uow.enrollmentTokens.get(id);
    // Compare the hashes in constant time; an unknown id compares against a dummy so timing says nothing.
    const expected = record ? Buffer.from(record.secretHash, "hex") : Buffer.alloc(32);
    if (!timingSafeEqual(sha256(secret), expected) || !record) throw invalid();
    if (record.usedAt) throw new MoatError("PKI_ENROLL_TOKEN_USED", "the enrollment token was already used");
    const now = this.now();
    if (Date.parse(record.expiresAt) <= now.getTime()) throw new MoatError("PKI_ENROLL_TOKEN_EXPIRED", `the enrollment token expired at ${record.expiresAt}`);
    if (!(await uow.enrollmentTokens.markUsed(id, now.toISOString()))) throw new MoatError("PKI_ENROLL_TOKEN_USED", "the enrollment token was already used");
    return record.deviceId;
  }
}
