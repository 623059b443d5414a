/**
 * Shared port types for the change feed, open to every domain (like errors.ts).
 * The store is the source of truth; enforcement points follow the feed (ARCHITECTURE.md).
 */

/** What kind of enforcement-relevant change happened. Dotted, domain first. */
export type ChangeKind =
  | "device.status"
  | "device.updated"
  | "cert.revoked"
  | "cert.issued"
  | "ca.changed"
  | "policy.changed"
  | "role.assignment"
  | "credential.changed"
  | "token.revoked"
  | (string & {});

export interface ChangeInput {
  kind: ChangeKind;
  /** The thing changed: a device id, a serial, a role name. */
  subject: string;
  data?: Record<string, unknown>;
}

export interface Change extends ChangeInput {
  seq: number;
  createdAt: string;
}

/** Appends a change-feed row inside the caller's transaction. */
export interface ChangeWriter {
  append(change: ChangeInput): Promise<void>;
}

/** Follows the feed: in-process pushes after commit plus polling (other processes on the same database). */
export interface ChangeFeed {
  subscribe(listener: (change: Change) => void): () => void;
  latestSeq(): Promise<number>;
}

/** Runs `fn` in one database transaction with the domain's unit of work; retried on write conflicts. */
export type Transactional<U> = <T>(fn: (uow: U) => Promise<T>) => Promise<T>;
