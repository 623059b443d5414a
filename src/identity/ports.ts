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
  /** Devices per status, and per group (the `groups` largest groups, ungrouped as null). */
  tally(groups: number): Promise<{ byStatus: Record<string, number>; byGroup: { group: string | null; count: number }[] }>;
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

/**
 * A group's settings as stored. Null means "not configured": a rule or check that needs the setting
 * is off for the group's devices.
 */
export interface GroupSettingsRecord {
  group: string;
  /** Canonical CIDR blocks (`10.1.0.0/16`, `2001:db8::/64`) devices of the group connect from. */
  allowedCidrs: string[] | null;
  /** After this long without a connection a device of the group counts as missing (a duration like `1h`). */
  silenceWindow: string | null;
  /** The lowest firmware security version (anti-rollback counter) the group's devices should run. */
  minSecurityVersion: number | null;
  updatedAt: string;
  updatedBy: string;
}

export interface GroupSettingsRepository {
  get(group: string, options?: { forUpdate?: boolean }): Promise<GroupSettingsRecord | undefined>;
  list(): Promise<GroupSettingsRecord[]>;
  upsert(settings: GroupSettingsRecord): Promise<void>;
  delete(group: string): Promise<void>;
  /** How many devices carry each group name (groups exist as names on devices). */
  deviceCounts(): Promise<Map<string, number>>;
}

/** The firmware a device last said it runs. */
export interface FirmwareInventoryRecord {
  deviceId: string;
  version: string;
  securityVersion: number;
  /** When the report arrived (server time). */
  reportedAt: string;
  /** Who reported it: the OTA client after a boot (`ota`) or the device SDK at start (`sdk`). */
  source: "ota" | "sdk";
}

export interface FirmwareInventoryRepository {
  get(deviceId: string, options?: { forUpdate?: boolean }): Promise<FirmwareInventoryRecord | undefined>;
  /** Every device's record, by device id (keyset pages). */
  list(options: { after?: string; limit: number }): Promise<FirmwareInventoryRecord[]>;
  /** Devices per (version, security version), most common first, at most `limit` rows. */
  versions(limit: number): Promise<{ version: string; securityVersion: number; count: number }[]>;
  upsert(record: FirmwareInventoryRecord): Promise<void>;
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
  groups: GroupSettingsRepository;
  firmwareInventory: FirmwareInventoryRepository;
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
  groups: GroupSettingsRepository;
  firmwareInventory: FirmwareInventoryRepository;
}
