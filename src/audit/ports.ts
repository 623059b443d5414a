import type { ChainEntry } from "./chain.js";
import type { SecurityEvent, SecurityEventInput } from "./events.js";
import type { NodeId, StoredNode } from "./merkle.js";

export interface AuditQuery {
  type?: string;
  subject?: string;
  afterSeq?: number;
  limit?: number;
}

/** What the audit log needs from storage. */
export interface AuditPort {
  /** Appends in a transaction of its own. */
  appendStandalone(event: SecurityEventInput): Promise<void>;
  list(query: AuditQuery): Promise<SecurityEvent[]>;
  /** Streams every entry in seq order, in pages. */
  scan(fromSeq: number, pageSize: number): Promise<ChainEntry[]>;
  /** The head row; null when it is missing (the database was tampered with). */
  head(): Promise<{ seq: number; hash: string } | null>;
  entry(seq: number): Promise<ChainEntry | null>;
  /** The stored perfect subtrees among `ids` (absent ones are left out). */
  nodes(ids: readonly NodeId[]): Promise<StoredNode[]>;
  checkpoints: CheckpointStore;
  keys: AuditKeyStore;
}

export interface CheckpointRecord {
  size: number;
  rootHash: Buffer;
  /** The signed note, verbatim. */
  note: string;
  createdAt: string;
}

export interface CheckpointStore {
  /** Keeps the first checkpoint of each size; a second one of the same size is ignored. */
  save(record: CheckpointRecord): Promise<void>;
  latest(): Promise<CheckpointRecord | null>;
}

export interface AuditKeyRecord {
  id: string;
  /** The signed-note key name. */
  name: string;
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Buffer;
  /** PKCS#8 DER sealed by the envelope (aad `audit-key:<id>`); null when the key lives in a token. */
  sealedPrivateKey: Buffer | null;
  /** `pkcs11:<token>/<label>` when the key lives in a token. */
  location: string | null;
  createdAt: string;
}

export interface AuditKeyStore {
  get(id: string): Promise<AuditKeyRecord | null>;
  /** Inserts unless a key with this id exists (another process won the race); returns whether it inserted. */
  insert(record: AuditKeyRecord): Promise<boolean>;
}

/** Seals secrets under the KEK (the envelope). */
export interface SecretSealer {
  seal(plaintext: Uint8Array, aad: string): Promise<Buffer>;
  open(blob: Uint8Array, aad: string): Promise<Buffer>;
}
