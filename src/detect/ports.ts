import type { EventAppender, Severity } from "../audit/index.js";
import type { ChangeWriter, Transactional } from "../ports.js";
import type { AlertSubject, Evidence } from "./engine.js";

export const ALERT_STATUSES = ["open", "acknowledged", "resolved"] as const;
export type AlertStatus = (typeof ALERT_STATUSES)[number];

/** An alert as stored: one per rule and subject while it is not resolved. */
export interface AlertRecord {
  id: string;
  rule: string;
  subject: AlertSubject;
  severity: Severity;
  status: AlertStatus;
  /** How many times the rule fired for this subject while the alert was open. */
  count: number;
  firstSeen: string;
  lastSeen: string;
  /** The newest triggering events and measurements (bounded). */
  evidence: Evidence[];
  acknowledgedBy: string | null;
  resolvedBy: string | null;
}

export interface AlertFilter {
  /** Alerts about this device. */
  deviceId?: string;
  /** Open or acknowledged only. */
  open?: boolean;
  rule?: string;
  limit: number;
  /** Keyset: alerts after this id in the listing order. */
  after?: string;
}

export interface AlertRepository {
  /** The alert of this rule and subject that is not resolved, if any. */
  findUnresolved(rule: string, subject: AlertSubject, options?: { forUpdate?: boolean }): Promise<AlertRecord | undefined>;
  get(id: string, options?: { forUpdate?: boolean }): Promise<AlertRecord | undefined>;
  insert(alert: AlertRecord): Promise<void>;
  update(alert: AlertRecord): Promise<void>;
  /** Newest first (by first seen, then id). */
  list(filter: AlertFilter): Promise<AlertRecord[]>;
  countUnresolved(): Promise<Record<string, number>>;
}

/** A stored rule: its checked definition as JSON. */
export interface StoredRule {
  name: string;
  definition: unknown;
  updatedAt: string;
  updatedBy: string;
}

export interface RuleRepository {
  list(): Promise<StoredRule[]>;
  /** Replaces the whole stored set. */
  replaceAll(rules: StoredRule[]): Promise<void>;
}

export interface DetectUnitOfWork {
  alerts: AlertRepository;
  rules: RuleRepository;
  events: EventAppender;
  changes: ChangeWriter;
}

export interface DetectStore {
  transact: Transactional<DetectUnitOfWork>;
  alerts: AlertRepository;
  rules: RuleRepository;
}
