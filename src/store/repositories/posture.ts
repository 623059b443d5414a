import { sql, type Kysely } from "kysely";
import type {
  CaRow,
  CertificateRow,
  CheckOutcome,
  DeviceRow,
  LiveSessionRow,
  PostureDataPort,
  PostureRepository,
  PostureRunSummary,
  PostureStore,
  RegisteredKeyRow,
  ScanFindingRow,
  StoredFinding,
  Suppression,
  TakeoverRow,
} from "../../posture/index.js";
import { SEVERITIES } from "../../posture/index.js";
import type { Database, PostureRunsTable, PostureSuppressionsTable } from "../schema.js";
import type { Store } from "../store.js";

const BATCH = 200;

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
}

function toRun(row: PostureRunsTable): PostureRunSummary {
  return {
    id: row.id,
    runAt: row.run_at,
    finishedAt: row.finished_at,
    scope: row.scope,
    actor: row.actor,
    checks: JSON.parse(row.checks) as CheckOutcome[],
    counts: { critical: Number(row.critical_count), high: Number(row.high_count), medium: Number(row.medium_count), low: Number(row.low_count), info: Number(row.info_count) },
    suppressed: Number(row.suppressed),
    auditSeq: row.audit_seq === null ? null : Number(row.audit_seq),
  };
}

function toSuppression(row: Omit<PostureSuppressionsTable, "id"> & { id: number }): Suppression {
  return { id: Number(row.id), check: row.check_id, resource: row.resource_id, reason: row.reason, expiresAt: row.expires_at, createdAt: row.created_at, createdBy: row.created_by };
}

function deviceIdsOf(finding: StoredFinding): string {
  const ids = finding.resources.filter((r) => r.kind === "device").map((r) => r.id);
  return ids.length ? ` ${ids.join(" ")} ` : "";
}

/** Most severe first, so a run's pages read in that order. */
function bySeverity(a: StoredFinding, b: StoredFinding): number {
  return SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity);
}

export class KyselyPostureRepository implements PostureRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insertRun(run: PostureRunSummary): Promise<void> {
    await this.db
      .insertInto("posture_runs")
      .values({
        id: run.id,
        run_at: run.runAt,
        finished_at: run.finishedAt,
        scope: run.scope,
        actor: run.actor,
        checks: JSON.stringify(run.checks),
        critical_count: run.counts.critical,
        high_count: run.counts.high,
        medium_count: run.counts.medium,
        low_count: run.counts.low,
        info_count: run.counts.info,
        suppressed: run.suppressed,
        audit_seq: run.auditSeq,
      })
      .execute();
  }

  async setRunAuditSeq(id: string, seq: number): Promise<void> {
    await this.db.updateTable("posture_runs").set({ audit_seq: seq }).where("id", "=", id).execute();
  }

  private async insertFrom(runId: string, start: number, findings: readonly StoredFinding[]): Promise<void> {
    const sorted = [...findings].sort(bySeverity);
    // Batches keep each statement under SQLite's and PostgreSQL's bound-parameter limits.
    for (let i = 0; i < sorted.length; i += BATCH) {
      await this.db
        .insertInto("posture_findings")
        .values(
          sorted.slice(i, i + BATCH).map((f, j) => ({
            run_id: runId,
            ordinal: start + i + j,
            finding_key: f.key,
            check_id: f.check,
            severity: f.severity,
            resources: JSON.stringify(f.resources),
            device_ids: deviceIdsOf(f),
            evidence: JSON.stringify(f.evidence),
            fix: f.fix,
            suppressed: f.suppressed ? JSON.stringify(f.suppressed) : null,
          })),
        )
        .execute();
    }
  }

  insertFindings(runId: string, findings: readonly StoredFinding[]): Promise<void> {
    return this.insertFrom(runId, 0, findings);
  }

  async replaceFindings(runId: string, keys: readonly string[], findings: readonly StoredFinding[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const repo = new KyselyPostureRepository(trx);
      for (let i = 0; i < keys.length; i += BATCH) await trx.deleteFrom("posture_findings").where("run_id", "=", runId).where("finding_key", "in", keys.slice(i, i + BATCH)).execute();
      const top = await trx.selectFrom("posture_findings").select((eb) => eb.fn.max("ordinal").as("top")).where("run_id", "=", runId).executeTakeFirst();
      await repo.insertFrom(runId, top?.top === null || top?.top === undefined ? 0 : Number(top.top) + 1, findings);
    });
  }

  async recountRun(runId: string): Promise<void> {
    const run = await this.db.selectFrom("posture_runs").selectAll().where("id", "=", runId).executeTakeFirst();
    if (!run) return;
    const rows = await this.db
      .selectFrom("posture_findings")
      .select(["check_id", "severity", (eb) => eb.fn.countAll().as("n"), sql<number>`sum(case when suppressed is null then 0 else 1 end)`.as("s")])
      .where("run_id", "=", runId)
      .groupBy(["check_id", "severity"])
      .execute();
    const counts = { critical: 0, high: 0, medium: 0, low: 0, info: 0 } as Record<string, number>;
    const perCheck = new Map<string, { open: number; suppressed: number }>();
    let suppressed = 0;
    for (const row of rows) {
      const n = Number(row.n);
      const s = Number(row.s);
      counts[row.severity] = (counts[row.severity] ?? 0) + n - s;
      suppressed += s;
      const c = perCheck.get(row.check_id) ?? { open: 0, suppressed: 0 };
      c.open += n - s;
      c.suppressed += s;
      perCheck.set(row.check_id, c);
    }
    const checks = (JSON.parse(run.checks) as CheckOutcome[]).map((o) => {
      if (o.status === "not-applicable" || o.status === "error") return o;
      const c = perCheck.get(o.check) ?? { open: 0, suppressed: 0 };
      return { ...o, status: c.open > 0 ? ("failed" as const) : ("passed" as const), findings: c.open, suppressed: c.suppressed };
    });
    await this.db
      .updateTable("posture_runs")
      .set({ critical_count: counts.critical!, high_count: counts.high!, medium_count: counts.medium!, low_count: counts.low!, info_count: counts.info!, suppressed, checks: JSON.stringify(checks) })
      .where("id", "=", runId)
      .execute();
  }

  async latestRun(scope?: string): Promise<PostureRunSummary | null> {
    let q = this.db.selectFrom("posture_runs").selectAll();
    if (scope) q = q.where("scope", "=", scope);
    const row = await q.orderBy("run_at", "desc").orderBy("id", "desc").limit(1).executeTakeFirst();
    return row ? toRun(row) : null;
  }

  async listRuns(limit: number): Promise<PostureRunSummary[]> {
    return (await this.db.selectFrom("posture_runs").selectAll().orderBy("run_at", "desc").orderBy("id", "desc").limit(limit).execute()).map(toRun);
  }

  async findings(runId: string, filter: { check?: string; severity?: string; limit: number; after?: number }): Promise<Array<StoredFinding & { ordinal: number }>> {
    let q = this.db.selectFrom("posture_findings").selectAll().where("run_id", "=", runId);
    if (filter.check) q = q.where("check_id", "=", filter.check);
    if (filter.severity) q = q.where("severity", "=", filter.severity);
    if (filter.after !== undefined) q = q.where("ordinal", ">", filter.after);
    const rows = await q.orderBy("ordinal", "asc").limit(filter.limit).execute();
    return rows.map((row) => ({
      ordinal: Number(row.ordinal),
      key: row.finding_key,
      check: row.check_id,
      severity: row.severity as StoredFinding["severity"],
      resources: JSON.parse(row.resources) as StoredFinding["resources"],
      evidence: JSON.parse(row.evidence) as Record<string, unknown>,
      fix: row.fix,
      ...(row.suppressed ? { suppressed: JSON.parse(row.suppressed) as NonNullable<StoredFinding["suppressed"]> } : {}),
    }));
  }

  async findingKeysOfDevice(runId: string, deviceId: string): Promise<string[]> {
    const rows = await this.db.selectFrom("posture_findings").select("finding_key").where("run_id", "=", runId).where("device_ids", "like", `% ${deviceId.replace(/[%_\\]/g, "\\$&")} %`).execute();
    return rows.map((r) => r.finding_key);
  }

  async pruneFindings(keep: number): Promise<void> {
    const kept = this.db.selectFrom("posture_runs").select("id").orderBy("run_at", "desc").orderBy("id", "desc").limit(keep);
    const old = await this.db.selectFrom("posture_runs").select("id").where("id", "not in", kept).execute();
    for (const { id } of old) await this.db.deleteFrom("posture_findings").where("run_id", "=", id).execute();
  }

  async activeSuppressions(at: string): Promise<Suppression[]> {
    return (await this.db.selectFrom("posture_suppressions").selectAll().where("expires_at", ">", at).orderBy("id").execute()).map(toSuppression);
  }

  async listSuppressions(includeExpired: boolean, at: string): Promise<Suppression[]> {
    let q = this.db.selectFrom("posture_suppressions").selectAll();
    if (!includeExpired) q = q.where("expires_at", ">", at);
    return (await q.orderBy("id", "desc").limit(1000).execute()).map(toSuppression);
  }

  async insertSuppression(s: Omit<Suppression, "id">): Promise<Suppression> {
    const row = await this.db
      .insertInto("posture_suppressions")
      .values({ check_id: s.check, resource_id: s.resource, reason: s.reason, expires_at: s.expiresAt, created_at: s.createdAt, created_by: s.createdBy })
      .returning("id")
      .executeTakeFirstOrThrow();
    return { id: Number(row.id), ...s };
  }
}

/** The posture checks' reads over identity, PKI, sessions and scanner tables. */
export class KyselyPostureData implements PostureDataPort {
  constructor(private readonly db: Kysely<Database>) {}

  async caCertificates(): Promise<CaRow[]> {
    const rows = await this.db
      .selectFrom("ca_certificates")
      .select(["serial", "role", "subject", "not_after", "active", "key_location", "certificate_pem", sql<number>`case when sealed_key is null then 0 else 1 end`.as("sealed")])
      .execute();
    return rows.map((r) => ({
      serial: r.serial,
      role: r.role,
      subject: r.subject,
      notAfter: r.not_after,
      active: Number(r.active) === 1,
      keyHeld: Number(r.sealed) === 1 || r.key_location !== null,
      keyLocation: r.key_location,
      certificateDer: pemToDer(r.certificate_pem),
    }));
  }

  private certificates() {
    return this.db
      .selectFrom("certificates")
      .select(["serial", "device_id", "issuer_serial", "not_before", "not_after", "superseded_by", "certificate_der"])
      .where("status", "=", "active");
  }

  private static toCertificate(r: { serial: string; device_id: string; issuer_serial: string; not_before: string; not_after: string; superseded_by: string | null; certificate_der: Buffer }): CertificateRow {
    return { serial: r.serial, deviceId: r.device_id, issuerSerial: r.issuer_serial, notBefore: r.not_before, notAfter: r.not_after, supersededBy: r.superseded_by, der: Buffer.from(r.certificate_der) };
  }

  /**
   * One page in serial order. The status is filtered here, not in SQL: with `status = 'active'` in the
   * query, SQLite walks the status index and sorts every active certificate for each page, which makes
   * a pass over a fleet quadratic; the primary key keeps each page one index range.
   */
  async certificatesPage(after: string | null, limit: number): Promise<{ certificates: CertificateRow[]; next: string | null }> {
    let q = this.db.selectFrom("certificates").select(["serial", "device_id", "issuer_serial", "not_before", "not_after", "superseded_by", "certificate_der", "status"]);
    if (after !== null) q = q.where("serial", ">", after);
    const rows = await q.orderBy("serial").limit(limit).execute();
    return { certificates: rows.filter((r) => r.status === "active").map(KyselyPostureData.toCertificate), next: rows.length === limit ? rows.at(-1)!.serial : null };
  }

  async certificatesOfDevice(deviceId: string): Promise<CertificateRow[]> {
    return (await this.certificates().where("device_id", "=", deviceId).execute()).map(KyselyPostureData.toCertificate);
  }

  private static toDevice(r: { id: string; status: string; device_group: string | null; created_at: string; last_seen_at: string | null; last_seen_address: string | null; security_version: number | null }): DeviceRow {
    return {
      id: r.id,
      status: r.status,
      group: r.device_group,
      createdAt: r.created_at,
      lastSeenAt: r.last_seen_at,
      lastSeenAddress: r.last_seen_address,
      securityVersion: r.security_version === null ? null : Number(r.security_version),
    };
  }

  private devices() {
    return this.db
      .selectFrom("devices as d")
      .leftJoin("firmware_inventory as f", "f.device_id", "d.id")
      .select(["d.id", "d.status", "d.device_group", "d.created_at", "d.last_seen_at", "d.last_seen_address", "f.security_version"]);
  }

  async devicesPage(after: string | null, limit: number): Promise<DeviceRow[]> {
    let q = this.devices();
    if (after !== null) q = q.where("d.id", ">", after);
    return (await q.orderBy("d.id").limit(limit).execute()).map(KyselyPostureData.toDevice);
  }

  async device(id: string): Promise<DeviceRow | null> {
    const row = await this.devices().where("d.id", "=", id).executeTakeFirst();
    return row ? KyselyPostureData.toDevice(row) : null;
  }

  async registeredKeys(deviceId?: string): Promise<RegisteredKeyRow[]> {
    let q = this.db.selectFrom("device_keys").select(["device_id", "key_id", "spki_pem"]);
    if (deviceId) q = q.where("device_id", "=", deviceId);
    return (await q.execute()).map((r) => ({ deviceId: r.device_id, keyId: r.key_id, spkiPem: r.spki_pem }));
  }

  private liveSessions(aliveSince: string) {
    return this.db
      .selectFrom("mqtt_sessions as s")
      .innerJoin("mqtt_nodes as n", "n.node_id", "s.node_id")
      .where("n.heartbeat_at", ">=", aliveSince)
      .select(["s.session_id", "s.device_id", "s.client_id", "s.node_id", "s.address", "s.cert_serial", "s.connected_at"]);
  }

  private static toSession(r: { session_id: string; device_id: string; client_id: string; node_id: string; address: string | null; cert_serial: string | null; connected_at: string }): LiveSessionRow {
    return { sessionId: r.session_id, deviceId: r.device_id, clientId: r.client_id, nodeId: r.node_id, address: r.address, certSerial: r.cert_serial, connectedAt: r.connected_at };
  }

  async liveSessionsOnRevokedCertificates(aliveSince: string, deviceId?: string): Promise<Array<LiveSessionRow & { revokedAt: string | null }>> {
    let q = this.liveSessions(aliveSince).innerJoin("certificates as c", "c.serial", "s.cert_serial").where("c.status", "=", "revoked").select("c.revoked_at");
    if (deviceId) q = q.where("s.device_id", "=", deviceId);
    return (await q.execute()).map((r) => ({ ...KyselyPostureData.toSession(r), revokedAt: r.revoked_at }));
  }

  async liveDuplicateClientIds(aliveSince: string, deviceId?: string): Promise<LiveSessionRow[]> {
    const duplicated = this.db
      .selectFrom("mqtt_sessions as d")
      .innerJoin("mqtt_nodes as dn", "dn.node_id", "d.node_id")
      .where("dn.heartbeat_at", ">=", aliveSince)
      .select("d.client_id")
      .groupBy("d.client_id")
      .having((eb) => eb.fn.countAll(), ">", 1);
    let q = this.liveSessions(aliveSince).where("s.client_id", "in", duplicated);
    if (deviceId) q = q.where("s.device_id", "=", deviceId);
    return (await q.execute()).map(KyselyPostureData.toSession);
  }

  async takeovers(since: string, deviceId?: string): Promise<TakeoverRow[]> {
    let q = this.db.selectFrom("mqtt_session_takeovers").select(["at", "client_id", "device_id", "previous_address", "address"]).where("at", ">=", since);
    if (deviceId) q = q.where("device_id", "=", deviceId);
    return (await q.orderBy("id", "desc").limit(10_000).execute()).map((r) => ({ at: r.at, clientId: r.client_id, deviceId: r.device_id, previousAddress: r.previous_address, address: r.address }));
  }

  async latestScanFindings(since: string): Promise<{ runId: string; finishedAt: string; findings: ScanFindingRow[] } | null> {
    const run = await this.db.selectFrom("scan_runs").select(["id", "finished_at"]).where("status", "=", "completed").where("finished_at", ">=", since).orderBy("finished_at", "desc").limit(1).executeTakeFirst();
    if (!run) return null;
    const rows = await this.db.selectFrom("scan_findings").select(["rule_id", "severity", "title", "address", "port", "device_id"]).where("run_id", "=", run.id).where("device_id", "is not", null).orderBy("ordinal").execute();
    return {
      runId: run.id,
      finishedAt: run.finished_at,
      findings: rows.map((r) => ({ runId: run.id, finishedAt: run.finished_at, ruleId: r.rule_id, severity: r.severity, title: r.title, address: r.address, port: Number(r.port), deviceId: r.device_id })),
    };
  }
}

/** The posture domain's storage port over the store. */
export function postureStore(store: Store): PostureStore {
  return {
    transact: (fn) => store.transaction((tx) => fn({ posture: new KyselyPostureRepository(tx.db), events: tx.events })),
    posture: new KyselyPostureRepository(store.db),
    data: new KyselyPostureData(store.db),
    eventSeq: async (type, subject) => {
      const row = await store.db.selectFrom("audit_events").select((eb) => eb.fn.max("seq").as("seq")).where("type", "=", type).where("subject", "=", subject).executeTakeFirst();
      return row?.seq === null || row?.seq === undefined ? null : Number(row.seq);
    },
  };
}
