/**
 * The storage and identity ports the PKI declares. `src/store/repositories/pki.ts` implements the
 * repositories; the composition root supplies the device port (backed by the identity door).
 */
import type { EventAppender } from "../audit/index.js";
import type { ChangeWriter, Transactional } from "../ports.js";
import type { RevocationReason } from "./revocation-reason.js";

/** A device certificate as recorded by Moat. Times are ISO-8601 UTC. */
export interface CertificateRecord {
  serialHex: string;
  deviceId: string;
  issuerSerialHex: string;
  subject: string;
  /** SHA-256 of the DER, lower-case hex. */
  fingerprint: string;
  keyKind: string;
  notBefore: string;
  notAfter: string;
  status: "active" | "revoked";
  revokedAt: string | null;
  revocationReason: RevocationReason | null;
  /** The certificate that replaced this one (rotation, re-enrollment). */
  supersededBy: string | null;
  /** When a superseded certificate is to be revoked (end of the grace period). */
  revokeAfter: string | null;
  /** Start of the expiry window in which `cert.expiring` was last emitted for this certificate. */
  expiryNotifiedAt: string | null;
  createdAt: string;
  certificateDer: Buffer;
}

export interface CertificateFilter {
  deviceId?: string;
  /** As certificateStatus (certificate-view.ts) derives it: revoked, else expired, else superseded, else active. */
  status?: "active" | "revoked" | "expired" | "superseded";
  /** Only certificates whose notAfter is before this time (and not yet past `now`). */
  expiringBefore?: string;
  now?: string;
  issuerSerialHex?: string;
  limit?: number;
  /** Keyset pagination: serials after this one. */
  after?: string;
}

export interface RevokedEntry {
  serialHex: string;
  revokedAt: string;
  reason: RevocationReason;
}

export interface CertificateRepository {
  /** Inserts unless the serial exists; false on a serial collision (nothing written). */
  insertIfAbsent(record: CertificateRecord): Promise<boolean>;
  get(serialHex: string): Promise<CertificateRecord | undefined>;
  list(filter: CertificateFilter): Promise<CertificateRecord[]>;
  /** How many certificates the filter selects (the list's filter without its page). */
  count(filter: Omit<CertificateFilter, "after" | "limit">): Promise<number>;
  /** Marks revoked if still active; false when it already was. */
  revoke(serialHex: string, at: string, reason: RevocationReason): Promise<boolean>;
  /** Marks the certificate replaced by `by` unless it already was replaced; false when it was (nothing written). */
  supersede(serialHex: string, by: string, revokeAfter: string): Promise<boolean>;
  /** Active certificates of a device (not revoked; expired ones included). */
  activeForDevice(deviceId: string): Promise<CertificateRecord[]>;
  /** Superseded certificates whose grace period has ended. */
  dueForRevocation(now: string): Promise<CertificateRecord[]>;
  /** Active certificates expiring before `before` that were not yet notified since `windowStart`. */
  expiringUnnotified(now: string, before: string): Promise<CertificateRecord[]>;
  markExpiryNotified(serialHex: string, at: string): Promise<void>;
  /** All revoked serials of an issuing CA that have not expired (RFC 5280 §5.1.2.6 lets expired ones drop off). */
  revokedFor(issuerSerialHex: string, now: string): Promise<RevokedEntry[]>;
  /** Status rows for the OCSP responder, one query for many serials. */
  statuses(issuerSerialHex: string, serialsHex: readonly string[]): Promise<Pick<CertificateRecord, "serialHex" | "status" | "revokedAt" | "revocationReason">[]>;
}

/** The last CRL of a CA and its number (RFC 5280 §5.2.3: numbers increase monotonically). */
export interface CrlState {
  caSerialHex: string;
  number: number;
  thisUpdate: string;
  nextUpdate: string;
  der: Buffer;
}

export interface CrlRepository {
  get(caSerialHex: string): Promise<CrlState | undefined>;
  /** Stores the CRL; `number` must be greater than the stored one. */
  save(state: CrlState): Promise<void>;
}

/** One-time enrollment tokens: the identity domain keeps them, EST redeems them. */
export interface EnrollmentTokenPort {
  /** Throws `PKI_ENROLL_TOKEN_INVALID` unless the string has a token's form (no lookup). */
  checkForm(token: string): void;
  /**
   * Consumes the token inside the PKI's transaction and returns the device it was made for; throws
   * `PKI_ENROLL_TOKEN_INVALID`, `PKI_ENROLL_TOKEN_USED` or `PKI_ENROLL_TOKEN_EXPIRED`.
   */
  redeem(token: string): Promise<string>;
}

export interface ManufacturerCaRecord {
  fingerprint: string;
  subject: string;
  certificatePem: string;
  notAfter: string;
  createdAt: string;
}

export interface ManufacturerCaRepository {
  insert(record: ManufacturerCaRecord): Promise<void>;
  list(): Promise<ManufacturerCaRecord[]>;
  remove(fingerprint: string): Promise<boolean>;
}

/** What the PKI needs to know about a device: the identity door provides it. */
export interface PkiDevice {
  id: string;
  status: string;
  group: string | null;
}

/** Device access inside a PKI transaction. */
export interface PkiDevicePort {
  get(id: string): Promise<PkiDevice | undefined>;
  /** pending → active on the first certificate, with the identity domain's event and feed row. */
  activate(id: string, actor: string): Promise<void>;
}

export interface PkiUnitOfWork {
  certificates: CertificateRepository;
  crls: CrlRepository;
  enrollmentTokens: EnrollmentTokenPort;
  manufacturers: ManufacturerCaRepository;
  devices: PkiDevicePort;
  events: EventAppender;
  changes: ChangeWriter;
}

export interface PkiStore {
  transact: Transactional<PkiUnitOfWork>;
  certificates: CertificateRepository;
  crls: CrlRepository;
  enrollmentTokens: Pick<EnrollmentTokenPort, "checkForm">;
  manufacturers: ManufacturerCaRepository;
  devices: Pick<PkiDevicePort, "get">;
}
