import type { EventAppender } from "../audit/index.js";
import type { ChangeWriter, Transactional } from "../ports.js";

export const DEVICE_STATUSES = ["pending", "active", "suspended", "quarantined", "decommissioned"] as const;
export type DeviceStatus = (typeof DEVICE_STATUSES)[number];

export interface DeviceRecord {
  id: string;
  name: string;
  group: string | null;
  role: string;
  status: DeviceStatus;
  attributes: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  lastSeenAt: string | null;
  lastSeenAddress: string | null;
}

export interface DeviceFilter {
  status?: DeviceStatus;
  group?: string;
  role?: string;
  /** Substring of id or name. */
  search?: string;
  /** Keyset pagination: ids after this one. */
  after?: string;
  limit?: number;
}

export interface DeviceRepository {
  insert(device: DeviceRecord): Promise<void>;
  get(id: string, options?: { forUpdate?: boolean }): Promise<DeviceRecord | undefined>;
  list(filter: DeviceFilter): Promise<DeviceRecord[]>;
  count(filter: Omit<DeviceFilter, "after" | "limit">): Promise<number>;
  update(device: DeviceRecord): Promise<void>;
  recordSeen(entries: { id: string; at: string; address: string | null }[]): Promise<void>;
}

export interface OperatorTokenRecord {
  id: string;
  name: string;
  role: string;
  secretHash: string;
  createdAt: string;
  createdBy: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface TokenRepository {
  insert(token: OperatorTokenRecord): Promise<void>;
  getById(id: string): Promise<OperatorTokenRecord | undefined>;
  getByName(name: string): Promise<OperatorTokenRecord | undefined>;
  list(): Promise<OperatorTokenRecord[]>;
  update(token: OperatorTokenRecord): Promise<void>;
  touch(id: string, at: string): Promise<void>;
}

/** A public key registered for device-signed JWTs. */
export interface DeviceKeyRow {
  deviceId: string;
  /** `key:<first 16 hex of SHA-256(SPKI DER)>`. */
  keyId: string;
  spkiPem: string;
  createdAt: string;
  createdBy: string;
}

/** A per-device HMAC secret, stored sealed. */
export interface DeviceSecretRow {
  deviceId: string;
  /** `secret:<first 16 hex of SHA-256(secret)>`; never the secret. */
  secretId: string;
  /** The secret sealed by the envelope (AES-256-GCM, AAD `device-secret:<device>:<secret id>`). */
  sealed: Buffer;
  createdAt: string;
  /** Null for the current secret; the end of the grace period for the previous one. */
  notAfter: string | null;
}

export interface CredentialRepository {
  listKeys(deviceId: string): Promise<DeviceKeyRow[]>;
  /** False when the device already has this key (nothing written). */
  insertKey(row: DeviceKeyRow): Promise<boolean>;
  deleteKey(deviceId: string, keyId: string): Promise<boolean>;
  /** Newest first. */
  listSecrets(deviceId: string): Promise<DeviceSecretRow[]>;
  insertSecret(row: DeviceSecretRow): Promise<void>;
  setSecretNotAfter(deviceId: string, secretId: string, notAfter: string): Promise<void>;
  deleteSecret(deviceId: string, secretId: string): Promise<void>;
}

export interface EnrollmentTokenRecord {
  id: string;
  deviceId: string;
  /** SHA-256 of the secret part, hex; the token itself is never stored. */
  secretHash: string;
  createdAt: string;
  createdBy: string;
  expiresAt: string;
  usedAt: string | null;
}

export interface EnrollmentTokenRepository {
  insert(token: EnrollmentTokenRecord): Promise<void>;
  get(id: string): Promise<EnrollmentTokenRecord | undefined>;
  /** Marks used if unused; false when another request used it first (single use under concurrency). */
  markUsed(id: string, at: string): Promise<boolean>;
  list(deviceId?: string): Promise<EnrollmentTokenRecord[]>;
}

/** Seals and opens secrets at rest (the keys domain's Envelope satisfies it). */
export interface SecretSealer {
  seal(plaintext: Buffer, aad: string): Promise<Buffer>;
  open(blob: Buffer, aad: string): Promise<Buffer>;
}

export interface IdentityUnitOfWork {
  devices: DeviceRepository;
  tokens: TokenRepository;
  credentials: CredentialRepository;
  enrollmentTokens: EnrollmentTokenRepository;
  events: EventAppender;
  changes: ChangeWriter;
}

/** Storage as the identity domain needs it: transactional writes and plain reads. */
export interface IdentityStore {
  transact: Transactional<IdentityUnitOfWork>;
  devices: DeviceRepository;
  tokens: TokenRepository;
  credentials: CredentialRepository;
  enrollmentTokens: EnrollmentTokenRepository;
}
