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

export interface IdentityUnitOfWork {
  devices: DeviceRepository;
  tokens: TokenRepository;
  events: EventAppender;
  changes: ChangeWriter;
}

/** Storage as the identity domain needs it: transactional writes and plain reads. */
export interface IdentityStore {
  transact: Transactional<IdentityUnitOfWork>;
  devices: DeviceRepository;
  tokens: TokenRepository;
}
