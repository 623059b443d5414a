import type { Kysely } from "kysely";
import type {
  ActionFilter,
  ActionRecord,
  ActionRepository,
  BanRecord,
  BanRepository,
  DeliveryRecord,
  DeliveryRepository,
  DeliveryStatus,
  IncidentRecord,
  IncidentRepository,
  NotifyTargetRecord,
  NotifyTargetRepository,
  PlaybookRepository,
  RespondStore,
  RespondUnitOfWork,
  StoredPlaybook,
} from "../../respond/index.js";
import type { Dialect } from "../dialect.js";
import type { Database, IncidentsTable, NotifyDeliveriesTable, RespondActionsTable } from "../schema.js";
import type { Store, StoreTx } from "../store.js";

class KyselyPlaybookRepository implements PlaybookRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async get(name: string): Promise<StoredPlaybook | null> {
    const row = await this.db.selectFrom("respond_playbooks").selectAll().where("name", "=", name).executeTakeFirst();
    return row ? { name: row.name, definition: JSON.parse(row.definition), source: row.source, updatedAt: row.updated_at, updatedBy: row.updated_by } : null;
  }

  async list(): Promise<StoredPlaybook[]> {
    const rows = await this.db.selectFrom("respond_playbooks").selectAll().orderBy("name", "asc").execute();
    return rows.map((row) => ({ name: row.name, definition: JSON.parse(row.definition), source: row.source, updatedAt: row.updated_at, updatedBy: row.updated_by }));
  }

  async upsert(p: StoredPlaybook): Promise<void> {
    const values = { name: p.name, rule: p.definition.rule, definition: JSON.stringify(p.definition), source: p.source, updated_at: p.updatedAt, updated_by: p.updatedBy };
    await this.db
      .insertInto("respond_playbooks")
      .values(values)
      .onConflict((oc) => oc.column("name").doUpdateSet({ rule: values.rule, definition: values.definition, source: values.source, updated_at: values.updated_at, updated_by: values.updated_by }))
      .execute();
  }

  async delete(name: string): Promise<boolean> {
    const result = await this.db.deleteFrom("respond_playbooks").where("name", "=", name).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

function toAction(row: RespondActionsTable): ActionRecord {
  return {
    id: row.id,
    alertId: row.alert_id,
    playbook: row.playbook,
    rule: row.rule,
    action: row.action as ActionRecord["action"],
    subject: { kind: row.subject_kind, id: row.subject_id },
    mode: row.mode as ActionRecord["mode"],
    status: row.status as ActionRecord["status"],
    reason: row.reason,
    detail: JSON.parse(row.detail) as Record<string, unknown>,
    actor: row.actor,
    createdAt: row.created_at,
    undoneAt: row.undone_at,
    undoneBy: row.undone_by,
  };
}

class KyselyActionRepository implements ActionRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async insert(a: ActionRecord): Promise<void> {
    await this.db
      .insertInto("respond_actions")
      .values({
        id: a.id,
        alert_id: a.alertId,
        playbook: a.playbook,
        rule: a.rule,
        action: a.action,
        subject_kind: a.subject.kind,
        subject_id: a.subject.id,
        mode: a.mode,
        status: a.status,
        reason: a.reason,
        detail: JSON.stringify(a.detail),
        actor: a.actor,
        created_at: a.createdAt,
        undone_at: a.undoneAt,
        undone_by: a.undoneBy,
      })
      .execute();
  }

  async get(id: string, options: { forUpdate?: boolean } = {}): Promise<ActionRecord | null> {
    let q = this.db.selectFrom("respond_actions").selectAll().where("id", "=", id);
    if (options.forUpdate && this.dialect === "postgres") q = q.forUpdate();
    const row = await q.executeTakeFirst();
    return row ? toAction(row) : null;
  }

  async list(filter: ActionFilter): Promise<ActionRecord[]> {
    let q = this.db.selectFrom("respond_actions").selectAll();
    if (filter.alertId) q = q.where("alert_id", "=", filter.alertId);
    if (filter.playbook) q = q.where("playbook", "=", filter.playbook);
    const rows = await q.orderBy("created_at", "desc").orderBy("id", "desc").limit(filter.limit).execute();
    return rows.map(toAction);
  }

  async markUndone(id: string, at: string, by: string): Promise<void> {
    await this.db.updateTable("respond_actions").set({ status: "undone", undone_at: at, undone_by: by }).where("id", "=", id).execute();
  }

  async countSince(playbook: string | null, rule: string, since: string): Promise<number> {
    let q = this.db
      .selectFrom("respond_actions")
      .select((eb) => eb.fn.countAll().as("n"))
      .where("created_at", ">", since)
      .where("status", "in", ["done", "dry-run", "failed", "undone"]);
    q = playbook === null ? q.where("playbook", "is", null).where("rule", "=", rule) : q.where("playbook", "=", playbook);
    const row = await q.executeTakeFirst();
    return Number(row?.n ?? 0);
  }
}

class KyselyBanRepository implements BanRepository {
  constructor(private readonly db: Kysely<Database>) {}

  private static toBan(row: Database["respond_bans"]): BanRecord {
    return { range: row.range, actionId: row.action_id, expiresAt: row.expires_at, createdAt: row.created_at, createdBy: row.created_by };
  }

  async get(range: string): Promise<BanRecord | null> {
    const row = await this.db.selectFrom("respond_bans").selectAll().where("range", "=", range).executeTakeFirst();
    return row ? KyselyBanRepository.toBan(row) : null;
  }

  async active(now: string): Promise<BanRecord[]> {
    const rows = await this.db
      .selectFrom("respond_bans")
      .selectAll()
      .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
      .orderBy("range", "asc")
      .execute();
    return rows.map(KyselyBanRepository.toBan);
  }

  async upsert(ban: BanRecord): Promise<void> {
    await this.db
      .insertInto("respond_bans")
      .values({ range: ban.range, action_id: ban.actionId, expires_at: ban.expiresAt, created_at: ban.createdAt, created_by: ban.createdBy })
      .onConflict((oc) => oc.column("range").doUpdateSet({ action_id: ban.actionId, expires_at: ban.expiresAt, created_at: ban.createdAt, created_by: ban.createdBy }))
      .execute();
  }

  async delete(range: string): Promise<boolean> {
    const result = await this.db.deleteFrom("respond_bans").where("range", "=", range).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

class KyselyNotifyTargetRepository implements NotifyTargetRepository {
  constructor(private readonly db: Kysely<Database>) {}

  private static toTarget(row: Database["notify_targets"]): NotifyTargetRecord {
    return {
      name: row.name,
      kind: row.kind as NotifyTargetRecord["kind"],
      config: JSON.parse(row.config) as Record<string, unknown>,
      sealedSecret: row.sealed_secret ? Buffer.from(row.sealed_secret) : null,
      minSeverity: row.min_severity,
      createdAt: row.created_at,
      createdBy: row.created_by,
    };
  }

  async get(name: string): Promise<NotifyTargetRecord | null> {
    const row = await this.db.selectFrom("notify_targets").selectAll().where("name", "=", name).executeTakeFirst();
    return row ? KyselyNotifyTargetRepository.toTarget(row) : null;
  }

  async list(): Promise<NotifyTargetRecord[]> {
    return (await this.db.selectFrom("notify_targets").selectAll().orderBy("name", "asc").execute()).map(KyselyNotifyTargetRepository.toTarget);
  }

  async insert(t: NotifyTargetRecord): Promise<void> {
    await this.db
      .insertInto("notify_targets")
      .values({ name: t.name, kind: t.kind, config: JSON.stringify(t.config), sealed_secret: t.sealedSecret, min_severity: t.minSeverity, created_at: t.createdAt, created_by: t.createdBy })
      .execute();
  }

  async delete(name: string): Promise<boolean> {
    const result = await this.db.deleteFrom("notify_targets").where("name", "=", name).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

function toDelivery(row: NotifyDeliveriesTable): DeliveryRecord {
  return {
    id: row.id,
    target: row.target,
    eventType: row.event_type,
    payload: row.payload,
    attempts: Number(row.attempts),
    status: row.status as DeliveryStatus,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

class KyselyDeliveryRepository implements DeliveryRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(d: DeliveryRecord): Promise<void> {
    await this.db
      .insertInto("notify_deliveries")
      .values({
        id: d.id,
        target: d.target,
        event_type: d.eventType,
        payload: d.payload,
        attempts: d.attempts,
        status: d.status,
        next_attempt_at: d.nextAttemptAt,
        last_error: d.lastError,
        created_at: d.createdAt,
        updated_at: d.updatedAt,
      })
      .execute();
  }

  async get(id: string): Promise<DeliveryRecord | null> {
    const row = await this.db.selectFrom("notify_deliveries").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? toDelivery(row) : null;
  }

  async update(d: DeliveryRecord): Promise<void> {
    await this.db
      .updateTable("notify_deliveries")
      .set({ attempts: d.attempts, status: d.status, next_attempt_at: d.nextAttemptAt, last_error: d.lastError, updated_at: d.updatedAt })
      .where("id", "=", d.id)
      .execute();
  }

  async due(now: string, limit: number): Promise<DeliveryRecord[]> {
    const rows = await this.db
      .selectFrom("notify_deliveries")
      .selectAll()
      .where("status", "=", "pending")
      .where("next_attempt_at", "<=", now)
      .orderBy("next_attempt_at", "asc")
      .limit(limit)
      .execute();
    return rows.map(toDelivery);
  }

  async claim(id: string, expectedNext: string | null, leaseUntil: string): Promise<boolean> {
    const result = await this.db
      .updateTable("notify_deliveries")
      .set({ next_attempt_at: leaseUntil })
      .where("id", "=", id)
      .where("status", "=", "pending")
      .where((eb) => (expectedNext === null ? eb("next_attempt_at", "is", null) : eb("next_attempt_at", "=", expectedNext)))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async list(filter: { status?: DeliveryStatus; limit: number }): Promise<DeliveryRecord[]> {
    let q = this.db.selectFrom("notify_deliveries").selectAll();
    if (filter.status) q = q.where("status", "=", filter.status);
    return (await q.orderBy("updated_at", "desc").orderBy("id", "desc").limit(filter.limit).execute()).map(toDelivery);
  }
}

function toIncident(row: IncidentsTable): IncidentRecord {
  return {
    id: row.id,
    title: row.title,
    status: row.status as IncidentRecord["status"],
    severity: row.severity,
    alertIds: JSON.parse(row.alert_ids) as string[],
    fromSeq: Number(row.from_seq),
    openedAt: row.opened_at,
    openedBy: row.opened_by,
    closedAt: row.closed_at,
    closedBy: row.closed_by,
    resolution: row.resolution,
  };
}

class KyselyIncidentRepository implements IncidentRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async insert(i: IncidentRecord): Promise<void> {
    await this.db
      .insertInto("incidents")
      .values({
        id: i.id,
        title: i.title,
        status: i.status,
        severity: i.severity,
        alert_ids: JSON.stringify(i.alertIds),
        from_seq: i.fromSeq,
        opened_at: i.openedAt,
        opened_by: i.openedBy,
        closed_at: i.closedAt,
        closed_by: i.closedBy,
        resolution: i.resolution,
      })
      .execute();
  }

  async get(id: string, options: { forUpdate?: boolean } = {}): Promise<IncidentRecord | null> {
    let q = this.db.selectFrom("incidents").selectAll().where("id", "=", id);
    if (options.forUpdate && this.dialect === "postgres") q = q.forUpdate();
    const row = await q.executeTakeFirst();
    return row ? toIncident(row) : null;
  }

  async list(filter: { status?: "open" | "closed"; limit: number }): Promise<IncidentRecord[]> {
    let q = this.db.selectFrom("incidents").selectAll();
    if (filter.status) q = q.where("status", "=", filter.status);
    return (await q.orderBy("opened_at", "desc").orderBy("id", "desc").limit(filter.limit).execute()).map(toIncident);
  }

  async update(i: IncidentRecord): Promise<void> {
    await this.db.updateTable("incidents").set({ status: i.status, closed_at: i.closedAt, closed_by: i.closedBy, resolution: i.resolution, severity: i.severity }).where("id", "=", i.id).execute();
  }
}

function repositories(db: Kysely<Database>, dialect: Dialect): Omit<RespondUnitOfWork, "events" | "changes"> {
  return {
    playbooks: new KyselyPlaybookRepository(db),
    actions: new KyselyActionRepository(db, dialect),
    bans: new KyselyBanRepository(db),
    targets: new KyselyNotifyTargetRepository(db),
    deliveries: new KyselyDeliveryRepository(db),
    incidents: new KyselyIncidentRepository(db, dialect),
  };
}

/** The respond domain's storage port over the store. */
export function respondStore(store: Store): RespondStore {
  return {
    transact: (fn) => store.transaction((tx: StoreTx) => fn({ ...repositories(tx.db, store.dialect), events: tx.events, changes: tx.changes })),
    ...repositories(store.db, store.dialect),
  };
}
