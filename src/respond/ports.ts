/**
 * What the respond domain needs from the rest of Moat, as ports the composition root wires:
 * storage (playbooks, actions, bans, notification targets and deliveries, incidents) and the effects
 * it can have on other domains (quarantine and reactivate a device, revoke its certificates, publish
 * on the broker's alert topic). Nothing here imports identity, PKI or the broker.
 */
import type { EventAppender, SecurityEvent } from "../audit/index.js";
import type { ChangeWriter, Transactional } from "../ports.js";
import type { PlaybookDefinition } from "./playbook.js";

/** The kinds of thing an alert is about (detect's `subject.kind`). */
export interface AlertSubject {
  kind: string;
  id: string;
}

/** The actions a playbook may name. `notify` sends the alert to notification targets. */
export const ACTIONS = ["quarantine", "revoke", "ban-range", "notify"] as const;
export type ActionName = (typeof ACTIONS)[number];

/**
 * What became of one action: `done` (the effect happened), `dry-run` (recorded, not done), `skipped`
 * (the playbook's rate cap or an unfit subject stopped it), `failed` (the effect threw), `undone`.
 */
export type ActionStatus = "done" | "dry-run" | "skipped" | "failed" | "undone";

export interface StoredPlaybook {
  name: string;
  definition: PlaybookDefinition;
  /** The YAML as applied (shown back by `moat playbook show`). */
  source: string;
  updatedAt: string;
  updatedBy: string;
}

export interface ActionRecord {
  id: string;
  alertId: string;
  /** Null for a rule's default action run without a playbook, and for manual actions. */
  playbook: string | null;
  rule: string;
  action: ActionName;
  subject: AlertSubject;
  /** `auto`: run by the executor on an alert; `manual`: an operator's command. */
  mode: "auto" | "manual";
  status: ActionStatus;
  /** Why it was skipped or failed, or what was done (`quarantined`, `2 certificates revoked`). */
  reason: string | null;
  /** Non-secret detail: revoked serials, the ban's expiry, the targets notified. */
  detail: Record<string, unknown>;
  actor: string;
  createdAt: string;
  undoneAt: string | null;
  undoneBy: string | null;
}

export interface ActionFilter {
  alertId?: string;
  playbook?: string;
  limit: number;
}

export interface BanRecord {
  /** The banned range as a CIDR block (`203.0.113.0/24`, `2001:db8:1:2::/64`). */
  range: string;
  actionId: string | null;
  /** Null: until unbanned. */
  expiresAt: string | null;
  createdAt: string;
  createdBy: string;
}

export type TargetKind = "webhook" | "syslog" | "mqtt";

export interface NotifyTargetRecord {
  name: string;
  kind: TargetKind;
  /** Kind-specific, non-secret settings (URL, host/port/transport, CA PEM, topic prefix). */
  config: Record<string, unknown>;
  /** The webhook signing secret sealed by the envelope (aad `notify-secret:<name>`); null for other kinds. */
  sealedSecret: Buffer | null;
  /** The least severity delivered by default (a playbook's `notify` action delivers regardless). */
  minSeverity: string;
  createdAt: string;
  createdBy: string;
}

export type DeliveryStatus = "pending" | "delivered" | "dead";

export interface DeliveryRecord {
  /** The message id (`webhook-id`; the syslog MSGID's structured data carries it too). */
  id: string;
  target: string;
  eventType: string;
  /** The JSON body exactly as sent (redeliveries send the same bytes with a fresh timestamp). */
  payload: string;
  attempts: number;
  status: DeliveryStatus;
  nextAttemptAt: string | null;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface IncidentRecord {
  id: string;
  title: string;
  status: "open" | "closed";
  severity: string;
  alertIds: string[];
  openedAt: string;
  openedBy: string;
  closedAt: string | null;
  closedBy: string | null;
  resolution: string | null;
  /** Where in the audit log the incident's timeline starts (its alerts' first `alert.raised`). */
  fromSeq: number;
}

export interface PlaybookRepository {
  get(name: string): Promise<StoredPlaybook | null>;
  list(): Promise<StoredPlaybook[]>;
  upsert(playbook: StoredPlaybook): Promise<void>;
  delete(name: string): Promise<boolean>;
}

export interface ActionRepository {
  insert(action: ActionRecord): Promise<void>;
  get(id: string, options?: { forUpdate?: boolean }): Promise<ActionRecord | null>;
  /** Newest first. */
  list(filter: ActionFilter): Promise<ActionRecord[]>;
  markUndone(id: string, at: string, by: string): Promise<void>;
  /**
   * Actions that count against a cap (`done`, `dry-run`, `failed`) since `since`: a playbook's, or with
   * playbook null the default actions of `rule`.
   */
  countSince(playbook: string | null, rule: string, since: string): Promise<number>;
}

export interface BanRepository {
  get(range: string): Promise<BanRecord | null>;
  /** Bans not expired at `now`. */
  active(now: string): Promise<BanRecord[]>;
  upsert(ban: BanRecord): Promise<void>;
  delete(range: string): Promise<boolean>;
}

export interface NotifyTargetRepository {
  get(name: string): Promise<NotifyTargetRecord | null>;
  list(): Promise<NotifyTargetRecord[]>;
  insert(target: NotifyTargetRecord): Promise<void>;
  delete(name: string): Promise<boolean>;
}

export interface DeliveryRepository {
  insert(delivery: DeliveryRecord): Promise<void>;
  get(id: string): Promise<DeliveryRecord | null>;
  update(delivery: DeliveryRecord): Promise<void>;
  /** Pending deliveries due at `now`, oldest first. */
  due(now: string, limit: number): Promise<DeliveryRecord[]>;
  /**
   * Takes a pending delivery for one attempt by moving its next attempt to `leaseUntil`, only if it still
   * is `expectedNext` (compare-and-swap): of several serving nodes, one sends it.
   */
  claim(id: string, expectedNext: string | null, leaseUntil: string): Promise<boolean>;
  /** Newest first. */
  list(filter: { status?: DeliveryStatus; limit: number }): Promise<DeliveryRecord[]>;
}

export interface IncidentRepository {
  insert(incident: IncidentRecord): Promise<void>;
  get(id: string, options?: { forUpdate?: boolean }): Promise<IncidentRecord | null>;
  /** Newest first. */
  list(filter: { status?: "open" | "closed"; limit: number }): Promise<IncidentRecord[]>;
  update(incident: IncidentRecord): Promise<void>;
}

export interface RespondUnitOfWork {
  playbooks: PlaybookRepository;
  actions: ActionRepository;
  bans: BanRepository;
  targets: NotifyTargetRepository;
  deliveries: DeliveryRepository;
  incidents: IncidentRepository;
  events: EventAppender;
  changes: ChangeWriter;
}

export interface RespondStore extends Omit<RespondUnitOfWork, "events" | "changes"> {
  transact: Transactional<RespondUnitOfWork>;
}

/** Reads the audit log in order (the incident timeline, `moat events tail`). */
export interface AuditReader {
  /** Entries with seq > afterSeq, oldest first. */
  scan(afterSeq: number, limit: number): Promise<SecurityEvent[]>;
}

/** Device containment through the identity domain: a status change, audited there too. */
export interface DeviceContainment {
  /** Moves the device to `quarantined` (its live session is narrowed, not closed); returns its previous status. */
  quarantine(deviceId: string, actor: string, reason: string): Promise<{ from: string }>;
  /** Moves a quarantined device back to `status` (undo). */
  restore(deviceId: string, status: string, actor: string, reason: string): Promise<void>;
}

/** Certificate revocation through the PKI. Revocation is final (RFC 5280 has no un-revoke but certificateHold, which Moat does not use). */
export interface CertificateRevoker {
  /** Revokes every current certificate of the device; returns the revoked serials. */
  revokeDevice(deviceId: string, actor: string): Promise<string[]>;
}

/** Server-side MQTT publish (the broker's alert topic); absent outside `moat serve`. */
export interface AlertTopicPublisher {
  publish(topic: string, payload: Buffer): Promise<void>;
}

/** Where range bans take effect: the MQTT listeners of this node. */
export interface RangeBanTarget {
  banRange(range: string, expiresAtMs: number | null): void;
  unbanRange(range: string): void;
}
