/** What compliance reports read and where attestations and reports are kept. */
import type { EventAppender } from "../audit/index.js";

export interface Attestation {
  id: number;
  standard: string;
  control: string;
  statement: string;
  evidenceUrl: string | null;
  owner: string;
  expiresAt: string;
  createdAt: string;
  createdBy: string;
  /** Sequence number of its `compliance.attested` event. */
  auditSeq: number | null;
}

export interface StoredReport {
  id: string;
  standard: string;
  createdAt: string;
  actor: string;
  hash: string;
  summary: ReportSummary;
}

export interface ReportSummary {
  score: number;
  counts: Record<ControlStatus, number>;
  statuses: Record<string, ControlStatus>;
}

export type ControlStatus = "pass" | "fail" | "manual" | "not-applicable";

export interface ComplianceRepository {
  insertAttestation(a: Omit<Attestation, "id" | "auditSeq">): Promise<Attestation>;
  /** Attestations (newest first); `validAt` keeps those not expired then. */
  attestations(filter: { standard?: string; control?: string; validAt?: string; limit: number }): Promise<Attestation[]>;
  insertReport(report: StoredReport & { report: string }): Promise<void>;
  latestReport(standard: string): Promise<StoredReport | null>;
  reports(filter: { standard?: string; limit: number }): Promise<StoredReport[]>;
  reportDocument(id: string): Promise<string | null>;
}

export interface ComplianceUnitOfWork {
  compliance: ComplianceRepository;
  events: EventAppender;
}

export interface ComplianceStore {
  transact<T>(fn: (uow: ComplianceUnitOfWork) => Promise<T>): Promise<T>;
  compliance: ComplianceRepository;
  /** Sequence number of the newest audit event of this type (and subject, when given). */
  eventSeq(type: string, subject?: string): Promise<number | null>;
}

/** One configuration or capability fact a control can rest on. */
export interface ConfigFact {
  ok: boolean;
  /** What was found (a setting's value, a count). */
  value: unknown;
  detail: string;
}

/** Installation facts for the catalogues' `config` evidence (wired by the composition root from their owners). */
export interface ComplianceFacts {
  /** The facts by name; an unknown name is not applicable. */
  config(): Promise<Record<string, ConfigFact>>;
  installation: { trustDomain: string; manufacturer: string | null; supportPeriodEnd: string | null; reportingContact: string | null };
}
