import type { Kysely } from "kysely";
import type { AlertFilter, AlertRecord, AlertRepository, AlertSubject, DetectStore, DetectUnitOfWork, Evidence, RuleRepository, StoredRule } from "../../detect/index.js";
import type { Database, DetectAlertsTable } from "../schema.js";
import type { Store, StoreTx } from "../store.js";

function toAlert(row: DetectAlertsTable): AlertRecord {
  return {
    id: row.id,
    rule: row.rule,
    subject: { kind: row.subject_kind as AlertSubject["kind"], id: row.subject_id },
    severity: row.severity as AlertRecord["severity"],
    status: row.status as AlertRecord["status"],
    count: Number(row.count),
    firstSeen: row.first_seen,
    lastSeen: row.last_seen,
    evidence: JSON.parse(row.evidence) as Evidence[],
    acknowledgedBy: row.acknowledged_by,
    resolvedBy: row.resolved_by,
  };
}

function fromAlert(a: AlertRecord): DetectAlertsTable {
  return {
    id: a.id,
    rule: a.rule,
    subject_kind: a.subject.kind,
    subject_id: a.subject.id,
    severity: a.severity,
    status: a.status,
    count: a.count,
    first_seen: a.firstSeen,
    last_seen: a.lastSeen,
    evidence: JSON.stringify(a.evidence),
    acknowledged_by: a.acknowledgedBy,
    resolved_by: a.resolvedBy,
  };
}

export class KyselyAlertRepository implements AlertRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: "sqlite" | "postgres",
  ) {}

  async findUnresolved(rule: string, subject: AlertSubject, options: { forUpdate?: boolean } = {}): Promise<AlertRecord | undefined> {
    let q = this.db
      .selectFrom("detect_alerts")
      .selectAll()
      .where("rule", "=", rule)
      .where("subject_kind", "=", subject.kind)
      .where("subject_id", "=", subject.id)
      .where("status", "!=", "resolved");
    if (options.forUpdate && this.dialect === "postgres") q = q.forUpdate();
    const row = await q.executeTakeFirst();
    return row ? toAlert(row) : undefined;
  }

  async get(id: string, options: { forUpdate?: boolean } = {}): Promise<AlertRecord | undefined> {
    let q = this.db.selectFrom("detect_alerts").selectAll().where("id", "=", id);
    if (options.forUpdate && this.dialect === "postgres") q = q.forUpdate();
    const row = await q.executeTakeFirst();
    return row ? toAlert(row) : undefined;
  }

  async insert(alert: AlertRecord): Promise<void> {
    await this.db.insertInto("detect_alerts").values(fromAlert(alert)).execute();
  }

  async update(alert: AlertRecord): Promise<void> {
    const { id, ...rest } = fromAlert(alert);
    await this.db.updateTable("detect_alerts").set(rest).where("id", "=", id).execute();
  }

  async list(filter: AlertFilter): Promise<AlertRecord[]> {
    let q = this.db.selectFrom("detect_alerts").selectAll();
    if (filter.deviceId) q = q.where("subject_kind", "=", "device").where("subject_id", "=", filter.deviceId);
    if (filter.open) q = q.where("status", "!=", "resolved");
    if (filter.rule) q = q.where("rule", "=", filter.rule);
    if (filter.after) {
      const anchor = await this.db.selectFrom("detect_alerts").select(["first_seen", "id"]).where("id", "=", filter.after).executeTakeFirst();
      if (anchor) q = q.where((eb) => eb.or([eb("first_seen", "<", anchor.first_seen), eb.and([eb("first_seen", "=", anchor.first_seen), eb("id", "<", anchor.id)])]));
    }
    return (await q.orderBy("first_seen", "desc").orderBy("id", "desc").limit(filter.limit).execute()).map(toAlert);
  }

  async countUnresolved(): Promise<Record<string, number>> {
    const rows = await this.db
      .selectFrom("detect_alerts")
      .select(["severity", (eb) => eb.fn.countAll().as("n")])
      .where("status", "!=", "resolved")
      .groupBy("severity")
      .execute();
    return Object.fromEntries(rows.map((r) => [r.severity, Number(r.n)]));
  }
}

export class KyselyRuleRepository implements RuleRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async list(): Promise<StoredRule[]> {
    const rows = await this.db.selectFrom("detect_rules").selectAll().orderBy("name", "asc").execute();
    return rows.map((r) => ({ name: r.name, definition: JSON.parse(r.definition) as unknown, updatedAt: r.updated_at, updatedBy: r.updated_by }));
  }

  async replaceAll(rules: StoredRule[]): Promise<void> {
    await this.db.deleteFrom("detect_rules").execute();
    if (rules.length > 0)
      await this.db
        .insertInto("detect_rules")
        .values(rules.map((r) => ({ name: r.name, definition: JSON.stringify(r.definition), updated_at: r.updatedAt, updated_by: r.updatedBy })))
        .execute();
  }
}

function detectUnitOfWork(store: Store, tx: StoreTx): DetectUnitOfWork {
  return { alerts: new KyselyAlertRepository(tx.db, store.dialect), rules: new KyselyRuleRepository(tx.db), events: tx.events, changes: tx.changes };
}

/** The detect domain's storage port over this store. */
export function detectStore(store: Store): DetectStore {
  return {
    transact: (fn) => store.transaction((tx) => fn(detectUnitOfWork(store, tx))),
    alerts: new KyselyAlertRepository(store.db, store.dialect),
    rules: new KyselyRuleRepository(store.db),
  };
}
