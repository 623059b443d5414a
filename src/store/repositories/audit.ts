import { sql, type Kysely } from "kysely";
import { entryHash, type AuditPort, type AuditQuery, type ChainEntry, type SecurityEvent, type SecurityEventInput } from "../../audit/index.js";
import type { Database } from "../schema.js";

/**
 * Appends one event to the hash chain inside the caller's transaction. The head row is updated first,
 * which takes its write lock (a row lock in PostgreSQL, the database write lock in SQLite), so
 * concurrent appenders, in this process or another, serialise and the chain never forks.
 */
export async function appendEvent(db: Kysely<Database>, event: SecurityEventInput): Promise<void> {
  const head = await db
    .updateTable("audit_head")
    .set({ seq: sql`seq + 1` })
    .where("id", "=", 1)
    .returning(["seq", "hash"])
    .executeTakeFirstOrThrow();
  const fields = {
    seq: Number(head.seq),
    time: new Date().toISOString(),
    type: event.type,
    severity: event.severity ?? "info",
    actor: event.actor ?? "system",
    subject: event.subject ?? "",
    // Normalise through JSON so the hash covers exactly what is stored (Dates, undefined, …).
    data: JSON.parse(JSON.stringify(event.data ?? {})) as Record<string, unknown>,
    prevHash: head.hash,
  };
  const hash = entryHash(fields);
  await db
    .insertInto("audit_events")
    .values({
      seq: fields.seq,
      time: fields.time,
      type: fields.type,
      severity: fields.severity,
      actor: fields.actor,
      subject: fields.subject,
      data: JSON.stringify(fields.data),
      prev_hash: fields.prevHash,
      hash,
    })
    .execute();
  await db.updateTable("audit_head").set({ hash }).where("id", "=", 1).execute();
}

function toEvent(row: Database["audit_events"]): SecurityEvent {
  return {
    seq: Number(row.seq),
    time: row.time,
    type: row.type,
    severity: row.severity as SecurityEvent["severity"],
    actor: row.actor,
    subject: row.subject,
    data: JSON.parse(row.data) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

export class AuditRepository implements AuditPort {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly inTransaction: <T>(fn: (db: Kysely<Database>) => Promise<T>) => Promise<T>,
  ) {}

  appendStandalone(event: SecurityEventInput): Promise<void> {
    return this.inTransaction((tx) => appendEvent(tx, event));
  }

  async list(query: AuditQuery): Promise<SecurityEvent[]> {
    let q = this.db.selectFrom("audit_events").selectAll().orderBy("seq", "desc").limit(Math.min(query.limit ?? 100, 1000));
    if (query.type) q = q.where("type", "=", query.type);
    if (query.subject) q = q.where("subject", "=", query.subject);
    if (query.afterSeq !== undefined) q = q.where("seq", ">", query.afterSeq);
    return (await q.execute()).map(toEvent);
  }

  async scan(fromSeq: number, pageSize: number): Promise<ChainEntry[]> {
    const rows = await this.db.selectFrom("audit_events").selectAll().where("seq", ">", fromSeq).orderBy("seq", "asc").limit(pageSize).execute();
    return rows.map(toEvent);
  }

  async head(): Promise<{ seq: number; hash: string }> {
    const row = await this.db.selectFrom("audit_head").select(["seq", "hash"]).where("id", "=", 1).executeTakeFirstOrThrow();
    return { seq: Number(row.seq), hash: row.hash };
  }
}
