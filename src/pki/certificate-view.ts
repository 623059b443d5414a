import type { CertificateRecord } from "./ports.js";

/** The statuses a person sees (and filters by); the store keeps only active and revoked. */
export const CERTIFICATE_STATUSES = ["active", "revoked", "expired", "superseded"] as const;
export type CertificateStatus = (typeof CERTIFICATE_STATUSES)[number];

/**
 * A certificate's status as shown and filtered: revoked wins, then expired (past notAfter), then
 * superseded (a newer certificate replaced it and it awaits revocation after the grace period),
 * else active. The store's status filter (CertificateFilter.status) follows the same order.
 */
export function certificateStatus(record: Pick<CertificateRecord, "status" | "notAfter" | "supersededBy">, now = Date.now()): CertificateStatus {
  if (record.status === "revoked") return "revoked";
  if (Date.parse(record.notAfter) <= now) return "expired";
  return record.supersededBy ? "superseded" : "active";
}

/** The public view of a certificate record (API responses and the CLI's --json): no DER, the derived status. */
export function certificateView(record: CertificateRecord, now = Date.now()): Record<string, unknown> {
  return {
    serial: record.serialHex,
    deviceId: record.deviceId,
    status: certificateStatus(record, now),
    subject: record.subject,
    issuer: record.issuerSerialHex,
    fingerprint: record.fingerprint,
    keyKind: record.keyKind,
    notBefore: record.notBefore,
    notAfter: record.notAfter,
    revokedAt: record.revokedAt,
    revocationReason: record.revocationReason,
    supersededBy: record.supersededBy,
    revokeAfter: record.revokeAfter,
  };
}
