/** The storage the scanner needs (implemented by src/store): scan runs, their findings, and device addresses. */
import type { EventAppender } from "../audit/index.js";
import type { Transactional } from "../ports.js";
import type { Finding, ScanResult, ScanStatus, Severity } from "./types.js";

/** A finding as stored: tied to its run and, when the address matched one, to a device. */
export interface StoredFinding extends Finding {
  runId: string;
  deviceId: string | null;
}

export interface ScanRunRecord {
  id: string;
  startedAt: string;
  finishedAt: string;
  status: ScanStatus;
  targets: string[];
  portSpec: string;
  /** Who ran it: `cli:<user>`, `operator:<token>`. */
  actor: string;
  /** Findings per severity. */
  counts: Record<Severity, number>;
  openPorts: number;
  /** The run without its findings (those are rows of their own). */
  result: Omit<ScanResult, "findings">;
}

export type ScanRunSummary = Omit<ScanRunRecord, "result">;

export interface ScanRepository {
  insertRun(run: ScanRunRecord): Promise<void>;
  insertFindings(findings: readonly StoredFinding[]): Promise<void>;
  getRun(id: string): Promise<ScanRunRecord | undefined>;
  /** Newest first. */
  listRuns(filter: { limit: number; deviceId?: string }): Promise<ScanRunSummary[]>;
  findings(runId: string): Promise<StoredFinding[]>;
}

/** Which device was last seen at an address (the broker records it on connect). */
export interface DeviceAddressLookup {
  /** address → the device most recently seen there, for the addresses that match one. */
  devicesAt(addresses: readonly string[]): Promise<Map<string, { deviceId: string; lastSeenAt: string }>>;
}

export interface ScannerUnitOfWork {
  scans: ScanRepository;
  devices: DeviceAddressLookup;
  events: EventAppender;
}

export interface ScannerStore {
  transact: Transactional<ScannerUnitOfWork>;
  scans: ScanRepository;
  devices: DeviceAddressLookup;
}
