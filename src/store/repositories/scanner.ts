import type { Kysely } from "kysely";
import type { DeviceAddressLookup, ScanRepository, ScanRunRecord, ScanRunSummary, ScannerStore, StoredFinding } from "../../scanner/index.js";
import type { Database, ScanFindingsTable, ScanRunsTable } from "../schema.js";
import type { Store } from "../store.js";

type RunRow = Omit<ScanRunsTable, "result">;

function toSummary(row: RunRow): ScanRunSummary {
  return {
    id: row.id,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    status: row.status as ScanRunSummary["status"],
    targets: JSON.parse(row.targets) as string[],
    portSpec: row.port_spec,
    actor: row.actor,
    counts: { critical: Number(row.critical_count), high: Number(row.high_count), medium: Number(row.medium_count), low: Number(row.low_count), info: Number(row.info_count) },
    openPorts: Number(row.open_ports),
  };
}

function toFinding(row: ScanFindingsTable): StoredFinding {
  return {
    runId: row.run_id,
    id: row.rule_id,
    severity: row.severity as StoredFinding["severity"],
    title: row.title,
    evidence: row.evidence,
    remediation: row.remediation,
    owasp: JSON.parse(row.owasp) as StoredFinding["owasp"],
    etsi: JSON.parse(row.etsi) as string[],
    address: row.address,
    port: Number(row.port),
    transport: row.transport as StoredFinding["transport"],
    deviceId: row.device_id,
  };
}

const SUMMARY_COLUMNS = [
  "id",
  "started_at",
  "finished_at",
  "status",
  "targets",
  "port_spec",
  "actor",
  "critical_count",
  "high_count",
  "medium_count",
  "low_count",
  "info_count",
  "open_ports",
] as const;

export class KyselyScanRepository implements ScanRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insertRun(run: ScanRunRecord): Promise<void> {
    await this.db
      .insertInto("scan_runs")
      .values({
        id: run.id,
        started_at: run.startedAt,
        finished_at: run.finishedAt,
        status: run.status,
        targets: JSON.stringify(run.targets),
        port_spec: run.portSpec,
        actor: run.actor,
        critical_count: run.counts.critical,
        high_count: run.counts.high,
        medium_count: run.counts.medium,
        low_count: run.counts.low,
        info_count: run.counts.info,
        open_ports: run.openPorts,
        result: JSON.stringify(run.result),
      })
      .execute();
  }

  async insertFindings(findings: readonly StoredFinding[]): Promise<void> {
    // Batches keep each statement under SQLite's and PostgreSQL's bound-parameter limits.
    for (let start = 0; start < findings.length; start += 200) {
      await this.db
        .insertInto("scan_findings")
        .values(
          findings.slice(start, start + 200).map((f, i) => ({
            run_id: f.runId,
            ordinal: start + i,
            rule_id: f.id,
            severity: f.severity,
            title: f.title,
            evidence: f.evidence,
            remediation: f.remediation,
            owasp: JSON.stringify(f.owasp),
            etsi: JSON.stringify(f.etsi),
            address: f.address,
            port: f.port,
            transport: f.transport,
            device_id: f.deviceId,
          })),
        )
        .execute();
    }
  }

  async getRun(id: string): Promise<ScanRunRecord | undefined> {
    const row = await this.db.selectFrom("scan_runs").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? { ...toSummary(row), result: JSON.parse(row.result) as ScanRunRecord["result"] } : undefined;
  }

  async listRuns(filter: { limit: number; deviceId?: string }): Promise<ScanRunSummary[]> {
    let query = this.db.selectFrom("scan_runs").select(SUMMARY_COLUMNS);
    if (filter.deviceId) {
      const deviceId = filter.deviceId;
      query = query.where("id", "in", (qb) => qb.selectFrom("scan_findings").select("run_id").where("device_id", "=", deviceId));
    }
    const rows = await query.orderBy("started_at", "desc").orderBy("id", "desc").limit(filter.limit).execute();
    return rows.map(toSummary);
  }

  async findings(runId: string): Promise<StoredFinding[]> {
    return (await this.db.selectFrom("scan_findings").selectAll().where("run_id", "=", runId).orderBy("ordinal", "asc").execute()).map(toFinding);
  }
}

export class KyselyDeviceAddressLookup implements DeviceAddressLookup {
  constructor(private readonly db: Kysely<Database>) {}

  async devicesAt(addresses: readonly string[]): Promise<Map<string, { deviceId: string; lastSeenAt: string }>> {
    const found = new Map<string, { deviceId: string; lastSeenAt: string }>();
    if (addresses.length === 0) return found;
    const rows = await this.db
      .selectFrom("devices")
      .select(["id", "last_seen_address", "last_seen_at"])
      .where("last_seen_address", "in", [...addresses])
      .orderBy("last_seen_at", "desc")
      .orderBy("id", "asc")
      .execute();
    // Newest first: a reused address belongs to whoever was seen there last.
    for (const row of rows)
      if (row.last_seen_address && !found.has(row.last_seen_address)) found.set(row.last_seen_address, { deviceId: row.id, lastSeenAt: row.last_seen_at ?? "" });
    return found;
  }
}

/** The scanner's storage port over the store. */
export function scannerStore(store: Store): ScannerStore {
  return {
    transact: (fn) =>
      store.transaction((tx) =>
        fn({
          scans: new KyselyScanRepository(tx.db),
          devices: new KyselyDeviceAddressLookup(tx.db),
          events: tx.events,
        }),
      ),
    scans: new KyselyScanRepository(store.db),
    devices: new KyselyDeviceAddressLookup(store.db),
  };
}
