/**
 * What posture checks read and where their results go. The store answers the data port and keeps
 * runs, findings and suppressions; the composition root (src/core.ts) wires the installation facts
 * (settings, policy lint, audit verification, KEK, segmentation, certificate key facts) from their owners.
 */
import type { EventAppender } from "../audit/index.js";
import type { LintFinding } from "../policy/index.js";
import type { Finding, PostureRunSummary, Suppression } from "./model.js";

export interface CaRow {
  serial: string;
  role: string;
  subject: string;
  notAfter: string;
  active: boolean;
  /** The private key is held by this installation (sealed in the store, or in its token). */
  keyHeld: boolean;
  keyLocation: string | null;
  certificateDer: Buffer;
}

/** A device certificate Moat issued that is not revoked (expired ones included: the checks tell). */
export interface CertificateRow {
  serial: string;
  deviceId: string;
  issuerSerial: string;
  notBefore: string;
  notAfter: string;
  supersededBy: string | null;
  der: Buffer;
}

export interface DeviceRow {
  id: string;
  status: string;
  group: string | null;
  createdAt: string;
  lastSeenAt: string | null;
  lastSeenAddress: string | null;
  /** The firmware security version the device last reported (firmware inventory); null when it never reported. */
  securityVersion: number | null;
}

/** A public key registered for device JWTs (`moat device key add`), DER SPKI. */
export interface RegisteredKeyRow {
  deviceId: string;
  keyId: string;
  spkiPem: string;
}

export interface LiveSessionRow {
  sessionId: string;
  deviceId: string;
  clientId: string;
  nodeId: string;
  address: string | null;
  certSerial: string | null;
  connectedAt: string;
}

export interface TakeoverRow {
  at: string;
  clientId: string;
  deviceId: string;
  previousAddress: string | null;
  address: string | null;
}

export interface ScanFindingRow {
  runId: string;
  finishedAt: string;
  ruleId: string;
  severity: string;
  title: string;
  address: string;
  port: number;
  deviceId: string | null;
}

/** Reads over identity, PKI, sessions and the scanner (answered by the store). Pages are keyset-ordered by id or serial. */
export interface PostureDataPort {
  caCertificates(): Promise<CaRow[]>;
  /** Not-revoked certificates of one page of at most `limit` rows; `next` continues (null at the end). */
  certificatesPage(after: string | null, limit: number): Promise<{ certificates: CertificateRow[]; next: string | null }>;
  certificatesOfDevice(deviceId: string): Promise<CertificateRow[]>;
  devicesPage(after: string | null, limit: number): Promise<DeviceRow[]>;
  device(id: string): Promise<DeviceRow | null>;
  registeredKeys(deviceId?: string): Promise<RegisteredKeyRow[]>;
  /** Live sessions (nodes heard from since `aliveSince`) whose client certificate is revoked, with the revocation time. */
  liveSessionsOnRevokedCertificates(aliveSince: string, deviceId?: string): Promise<Array<LiveSessionRow & { revokedAt: string | null }>>;
  /** Live sessions whose client id has more than one live session. */
  liveDuplicateClientIds(aliveSince: string, deviceId?: string): Promise<LiveSessionRow[]>;
  takeovers(since: string, deviceId?: string): Promise<TakeoverRow[]>;
  /** The newest completed scan run finished at or after `since`, with its findings on fleet addresses (a device id). */
  latestScanFindings(since: string): Promise<{ runId: string; finishedAt: string; findings: ScanFindingRow[] } | null>;
}

/** What the composition root supplies from other owners. */
export interface InstallationFacts {
  settings: {
    expiryWindowDays: number;
    certificateMaxAgeDays: number;
    kekMaxAgeDays: number;
    neverSeenGraceDays: number;
    scanMaxAgeDays: number;
    /** Sessions of data-plane nodes not heard from for this long do not count. */
    sessionStaleMs: number;
    plaintextListener: { port: number } | null;
    logLevel: string;
  };
  /** `moat policy lint` over every role, assigned or not. */
  lint(): Promise<LintFinding[]>;
  /** The audit chain's verification. */
  auditChain(): Promise<{ ok: boolean; entries: number; problem?: string; firstBadSeq?: number | null }>;
  /** The current KEK version and since when it is current (rotation end, else installation time). */
  kek(): Promise<{ provider: string; version: number; since: string | null }>;
  /** Whether the configured segmentation policy's compiled ruleset is current; null when none is configured. */
  segmentation(): Promise<{ policyFile: string; compiledFile: string; upToDate: boolean; problem?: string } | null>;
  /** Key facts of a DER certificate or SPKI (the PKI's parser and weak-key rule). */
  keyFacts: {
    certificate(der: Buffer): { spkiSha256: string; algorithm: string; curve: string | null; bits: number; signatureAlgorithm: string };
    spkiPem(pem: string): { spkiSha256: string; algorithm: string; curve: string | null; bits: number; signatureAlgorithm: string };
    weakness(facts: { algorithm: string; curve: string | null; bits: number; signatureAlgorithm: string; spkiSha256: string }): string | null;
  };
  /**
   * Per-group settings (allowed CIDRs, silence window, minimum firmware security version). Without
   * them, or where no group sets one, the checks that need them are not applicable.
   */
  groupSettings?(): Promise<ReadonlyMap<string, GroupPostureSettings>>;
}

export interface GroupPostureSettings {
  allowedCidrs?: readonly string[];
  silenceWindowMs?: number;
  minFirmwareSecurityVersion?: number;
}

export interface StoredFinding extends Finding {
  /** Stable key of what the finding is about (check plus device, serial, key hash, …): re-evaluation replaces by key. */
  key: string;
}

export interface PostureRepository {
  insertRun(run: PostureRunSummary): Promise<void>;
  setRunAuditSeq(id: string, seq: number): Promise<void>;
  insertFindings(runId: string, findings: readonly StoredFinding[]): Promise<void>;
  /** Replaces, in one run, the findings with these keys (re-evaluation after one change). */
  replaceFindings(runId: string, keys: readonly string[], findings: readonly StoredFinding[]): Promise<void>;
  /** Recomputes a run's open counts, suppressed total and per-check finding numbers from its stored findings. */
  recountRun(runId: string): Promise<void>;
  latestRun(scope?: string): Promise<PostureRunSummary | null>;
  listRuns(limit: number): Promise<PostureRunSummary[]>;
  findings(runId: string, filter: { check?: string; severity?: string; limit: number; after?: number }): Promise<Array<StoredFinding & { ordinal: number }>>;
  /** Keys of stored findings that name this device (for re-evaluation). */
  findingKeysOfDevice(runId: string, deviceId: string): Promise<string[]>;
  /** Deletes the findings of all but the newest `keep` runs (run summaries stay). */
  pruneFindings(keep: number): Promise<void>;
  activeSuppressions(at: string): Promise<Suppression[]>;
  listSuppressions(includeExpired: boolean, at: string): Promise<Suppression[]>;
  insertSuppression(s: Omit<Suppression, "id">): Promise<Suppression>;
}

export interface PostureUnitOfWork {
  posture: PostureRepository;
  events: EventAppender;
}

export interface PostureStore {
  transact<T>(fn: (uow: PostureUnitOfWork) => Promise<T>): Promise<T>;
  posture: PostureRepository;
  data: PostureDataPort;
  /** Sequence number of the newest audit event of this type and subject (the evidence reports cite). */
  eventSeq(type: string, subject: string): Promise<number | null>;
}
