/**
 * Scans as a service: runs a scan inside the configured scope, then stores the run and its findings
 * in one transaction, links findings to the device last seen at the address, and records a
 * `scan.run` event plus one `scan.finding` event per critical finding.
 */
import { randomBytes } from "node:crypto";
import { MoatError } from "../errors.js";
import { SEVERITY_ORDER } from "./finding-rules.js";
import type { ScanRunRecord, ScanRunSummary, ScannerStore, StoredFinding } from "./ports.js";
import { runScan, type ScanOptions } from "./scan.js";
import { runScope } from "./target-scope.js";
import type { ScanResult, Severity } from "./types.js";
import { pageLimit } from "../lib/page.js";

export interface ScanServiceSettings {
  /** `scanner.allowedTargets`: the scope every run starts from. */
  allowedTargets: readonly string[];
}

export interface StoredScan extends ScanRunRecord {
  findings: StoredFinding[];
}

const RUN_ID = /^scan-[0-9a-f]{16}$/;

function newRunId(): string {
  return `scan-${randomBytes(8).toString("hex")}`;
}

/** IPv4 peers of a dual-stack listener appear as ::ffff:a.b.c.d; match both spellings. */
export function addressSpellings(address: string): string[] {
  return address.includes(":") ? [address] : [address, `::ffff:${address}`];
}

export class ScanService {
  constructor(
    private readonly store: ScannerStore,
    private readonly settings: ScanServiceSettings,
  ) {}

  /**
   * Runs and stores a scan. `allow` widens the configured scope for this run only (the CLI's
   * `--allow`); the scope guard refuses anything outside before a packet is sent.
   */
  async run(options: Omit<ScanOptions, "allow"> & { allow?: readonly string[]; actor: string }): Promise<StoredScan> {
    const { actor, allow, ...scanOptions } = options;
    const result = await runScan({ ...scanOptions, allow: runScope(this.settings.allowedTargets, allow) });
    return this.record(result, actor);
  }

  /** Stores a finished scan: run row, finding rows, events, all in one transaction. */
  async record(result: ScanResult, actor: string): Promise<StoredScan> {
    const id = newRunId();
    const counts = Object.fromEntries(SEVERITY_ORDER.map((s) => [s, 0])) as Record<Severity, number>;
    for (const f of result.findings) counts[f.severity]++;
    const { findings: _findings, ...withoutFindings } = result;
    const run: ScanRunRecord = {
      id,
      startedAt: result.startedAt,
      finishedAt: result.finishedAt,
      status: result.status,
      targets: result.targets,
      portSpec: result.portSpec,
      actor,
      counts,
      openPorts: result.hosts.reduce((sum, h) => sum + h.ports.length, 0),
      result: withoutFindings,
    };
    return this.store.transact(async (uow) => {
      const addresses = [...new Set(result.hosts.map((h) => h.address))].flatMap(addressSpellings);
      const seen = addresses.length ? await uow.devices.devicesAt(addresses) : new Map<string, { deviceId: string; lastSeenAt: string }>();
      // Across both spellings of an address, the device seen there last owns the findings.
      const deviceFor = (address: string) =>
        addressSpellings(address)
          .map((a) => seen.get(a))
          .filter((d) => d !== undefined)
          .sort((a, b) => b.lastSeenAt.localeCompare(a.lastSeenAt))[0]?.deviceId ?? null;
      const findings: StoredFinding[] = result.findings.map((f) => ({ ...f, runId: id, deviceId: deviceFor(f.address) }));
      await uow.scans.insertRun(run);
      await uow.scans.insertFindings(findings);
      await uow.events.append({
        type: "scan.run",
        severity: "info",
        actor,
        subject: id,
        data: { targets: run.targets, ports: run.portSpec, status: run.status, openPorts: run.openPorts, counts },
      });
      for (const f of findings.filter((f) => f.severity === "critical")) {
        // Evidence stays in the store: it may quote a default password, and events carry no secrets.
        await uow.events.append({
          type: "scan.finding",
          severity: "critical",
          actor,
          subject: f.deviceId ?? `${f.address}:${f.port}/${f.transport}`,
          data: { runId: id, rule: f.id, title: f.title, address: f.address, port: f.port, transport: f.transport, deviceId: f.deviceId, owasp: f.owasp, etsi: f.etsi },
        });
      }
      return { ...run, findings };
    });
  }

  async list(filter: { limit?: number; deviceId?: string } = {}): Promise<ScanRunSummary[]> {
    const limit = pageLimit(filter.limit, 50);
    return this.store.scans.listRuns({ limit, ...(filter.deviceId ? { deviceId: filter.deviceId } : {}) });
  }

  async get(id: string): Promise<StoredScan> {
    const run = RUN_ID.test(id) ? await this.store.scans.getRun(id) : undefined;
    if (!run) throw new MoatError("SCAN_NOT_FOUND", `No scan run has id '${id}'`, { detail: { id } });
    return { ...run, findings: await this.store.scans.findings(id) };
  }
}

/** The stored run as a ScanResult again (for the table and SARIF reports). */
export function toScanResult(scan: StoredScan): ScanResult {
  return { ...scan.result, findings: scan.findings.map(({ runId: _runId, deviceId: _deviceId, ...f }) => f) };
}
