/**
 * The narrow ports the MQTT broker needs from the rest of Moat. serve.ts wires them to the identity,
 * PKI, policy and audit services; `memory-directory.ts` is an in-memory implementation used by tests
 * and by embedders that keep devices elsewhere.
 */
import type { Change } from "../ports.js";

/** Lifecycle states a device can be in (identity domain). Only `active` and `quarantined` may connect. */
export type DeviceStatus = "pending" | "active" | "suspended" | "quarantined" | "decommissioned" | (string & {});

/** A device-registered public key for device-signed JWTs (`moat device key add`). */
export interface RegisteredPublicKey {
  /** SPKI in PEM. */
  pem: string;
  /** Where the key comes from: the device's current certificate or a key registered by an operator. */
  source: "certificate" | "registered";
  /** Key id (for example the SHA-256 thumbprint) shown in events; never secret. */
  id?: string;
}

/** A per-device HMAC secret for HS256 tokens. `notAfter` is set on the previous secret during its grace period. */
export interface DeviceHmacSecret {
  /** The decrypted secret bytes. The directory decrypts envelopes; the broker never stores them. */
  secret: Uint8Array;
  /** ISO-8601 time after which the secret no longer verifies tokens; null for the current secret. */
  notAfter: string | null;
}

/** What the broker needs to know about one device, read at CONNECT and on every enforcement change. */
export interface DeviceRecord {
  id: string;
  status: DeviceStatus;
  group: string | null;
  /**
   * The role the registry gives the device, carried into every decision about it; null where the
   * directory keeps no registry role (roles then come from assignments alone).
   */
  role: string | null;
  attributes: Readonly<Record<string, string>>;
  /** Public keys that may sign device JWTs (ES256 / EdDSA). */
  publicKeys: readonly RegisteredPublicKey[];
  /** HMAC secrets for HS256 JWTs, current first. */
  hmacSecrets: readonly DeviceHmacSecret[];
  /**
   * Serials (lower-case hex, no leading zeros) of the device's certificates that Moat issued and that
   * are neither revoked nor expired. A client certificate whose serial is not here is refused.
   */
  certSerials: readonly string[];
}

/** Reads devices from the source of truth. `null` means no such device. */
export interface DeviceDirectory {
  /** The identity domain's device-id rule: a client id that breaks it is refused before any lookup. */
  isDeviceId(id: string): boolean;
  get(deviceId: string): Promise<DeviceRecord | null>;
}

/** The revoked serials known to the store at start; after that the change feed keeps the view current. */
export interface RevocationSource {
  /** Lower-case hex serials of every revoked, not yet expired certificate. */
  revokedSerials(): Promise<Iterable<string>>;
}

/** The device a decision is about; structurally the policy engine's `DeviceSubject`. */
export interface BrokerSubject {
  id: string;
  group?: string | null;
  status?: string;
  attributes?: Readonly<Record<string, string>>;
  certCn?: string | null;
  /** Roles the device holds by its registry record (its registry role). */
  roles?: readonly string[];
}

/** The MQTT actions the broker asks about. `receive` is the delivery of a message to the device. */
export type BrokerAction = "publish" | "subscribe" | "receive";

/** The policy engine's answer; `rule` names the deciding rule for events and explanations. */
export interface BrokerDecision {
  allow: boolean;
  rule?: { role: string; effect?: string; action?: string; resource?: string; index?: number } | null;
  reason?: string;
}

/**
 * The access-control engine: pure, synchronous (delivery authorization runs inside aedes'
 * synchronous `authorizeForward`), and kept current by the policy domain from the change feed.
 */
export interface Decider {
  decide(subject: BrokerSubject, action: BrokerAction, topic: string): BrokerDecision;
  /**
   * Takes in one change-feed row; settles once decisions reflect it. The broker awaits it before it
   * applies the same row to live sessions, so a re-check never runs on the policy from before the change.
   * Absent for a fixed policy.
   */
  applyChange?(change: Change): Promise<void>;
}

/** One connection's last-seen record, written in batches. */
export interface LastSeenEntry {
  deviceId: string;
  at: string;
  address: string | null;
}

/** Persists last-seen times and peer addresses; called with batches, never per message. */
export interface LastSeenWriter {
  write(entries: readonly LastSeenEntry[]): Promise<void>;
}

/** PEM material for the listeners. Re-read on `ca.changed` so a rotated issuer is trusted without a restart. */
export interface BrokerTlsMaterial {
  /** Server certificate chain (leaf first) in PEM. */
  certPem: string;
  /** Server private key in PEM (decrypted in memory only). */
  keyPem: string;
  /** Trust anchors for client certificates: Moat's root(s) and issuing CA(s), PEM. */
  caPems: readonly string[];
  /**
   * The issuing CA certificates (PEM) a device certificate must be signed by directly: a chain that
   * ends at another CA under the same root (a server or manufacturer CA) is refused.
   */
  issuingCaPems: readonly string[];
}

export interface TlsMaterialSource {
  load(): Promise<BrokerTlsMaterial>;
}

/** A security event as the broker emits it (structurally the audit domain's `SecurityEventInput`). */
export interface BrokerEvent {
  type: string;
  severity?: "info" | "low" | "medium" | "high" | "critical";
  actor?: string;
  subject?: string;
  data?: Record<string, unknown>;
}

/** Emits standalone security events (`auth.failed`, `acl.denied`, ...); the audit domain's `SecurityEventSink`. */
export interface BrokerEventSink {
  emit(event: BrokerEvent): Promise<void>;
}

/**
 * Per-device traffic as the broker handles it, for whoever counts behaviour (detection's metrics, wired
 * by the composition root). Called synchronously on the message path, so it must be cheap and must not
 * throw; the broker passes sizes, never payloads.
 */
export interface TrafficObserver {
  /** An authorized publish by the device, with its payload size. */
  published(deviceId: string, bytes: number): void;
  /** A message delivered to the device (it passed the device's `receive` authorization). */
  delivered(deviceId: string, bytes: number): void;
}
