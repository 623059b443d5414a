/**
 * Standard Webhooks signatures (standardwebhooks.com, "Signature scheme"): the signed content is
 * `${webhook-id}.${webhook-timestamp}.${body}`, signed with HMAC-SHA256 under the secret's bytes, and
 * sent as `webhook-signature: v1,<base64>`. Secrets are `whsec_` + base64 of 32 random bytes.
 * The verifier is here too: tests and receivers written in TypeScript check deliveries with it.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { MoatError } from "../errors.js";

export const SECRET_PREFIX = "whsec_";
const SECRET_BYTES = 32;
/** Receivers should refuse timestamps further than this from their clock (replay protection). */
export const DEFAULT_TOLERANCE_SECONDS = 300;

export function generateWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(SECRET_BYTES).toString("base64");
}

/** The key bytes of a `whsec_…` secret. */
export function webhookSecretKey(secret: string): Buffer {
  const body = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : "";
  const key = /^[A-Za-z0-9+/]+={0,2}$/.test(body) ? Buffer.from(body, "base64") : Buffer.alloc(0);
  if (key.length < 24 || key.length > 64) throw new MoatError("NOTIFY_SECRET_INVALID", "a webhook secret is whsec_ followed by base64 of 24 to 64 bytes");
  return key;
}

export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const mac = createHmac("sha256", webhookSecretKey(secret)).update(`${id}.${timestamp}.${body}`).digest("base64");
  return `v1,${mac}`;
}

/** The three headers of one delivery attempt. */
export function webhookHeaders(secret: string, id: string, body: string, now = Date.now()): Record<string, string> {
  const timestamp = Math.floor(now / 1000);
  return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": signWebhook(secret, id, timestamp, body) };
}

/**
 * True when one of the space-separated `v1,` signatures matches (compared in constant time) and the
 * timestamp is within the tolerance of `now`.
 */
export function verifyWebhook(secret: string, headers: Record<string, string | string[] | undefined>, body: string, now = Date.now(), toleranceSeconds = DEFAULT_TOLERANCE_SECONDS): boolean {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (typeof id !== "string" || typeof timestamp !== "string" || typeof signatures !== "string" || !/^\d{1,12}$/.test(timestamp)) return false;
  if (Math.abs(now / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(secret, id, Number(timestamp), body).slice(3), "base64");
  return signatures.split(" ").some((entry) => {
    if (!entry.startsWith("v1,")) return false;
    const given = Buffer.from(entry.slice(3), "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}
