import { sql, type Kysely } from "kysely";
import {
  entryHash,
  entryLeafHash,
  nodeKey,
  nodesCompletedBy,
  siblingsOf,
  type AuditKeyRecord,
  type AuditKeyStore,
  type AuditPort,
  type AuditQuery,
  type ChainEntry,
  type CheckpointRecord,
  type CheckpointStore,
  type NodeId,
  type SecurityEvent,
  type SecurityEventInput,
  type StoredNode,
} from "../../audit/index.js";
import { MoatError } from "../../errors.js";
import type { Database } from "../schema.js";

/**
 * Appends one event to the log inside the caller's transaction: its chain hash and its Merkle leaf
 * with every subtree it completes. The head row is updated first, which takes its write lock (a row
 * lock in PostgreSQL, the database write lock in SQLite), so concurrent appenders, in this process or
 * another, serialise and neither the chain nor the tree forks.
 */
export async function appendEvent(db: Kysely<Database>, event: SecurityEventInput): Promise<void> {
  const head = await db.updateTable("audit_head").set({ seq: sql`seq + 1` }).where("id", "=", 1).returning(["seq", "hash"]).executeTakeFirst();
  if (!head) throw new MoatError("AUDIT_HEAD_MISSING", "the audit log's head row is missing (the database was tampered with); nothing was written. Run moat audit verify --checkpoint FILE");
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
  const siblings = new Map((await readNodes(db, siblingsOf(fields.seq - 1))).map((n) => [nodeKey(n), n.hash]));
  const nodes = nodesCompletedBy(fields.seq - 1, entryLeafHash(fields), (id) => {
    const found = siblings.get(nodeKey(id));
    if (!found) throw new MoatError("AUDIT_TREE_MISMATCH", `the audit tree lacks subtree level ${id.level} index ${id.index}; nothing was written`);
    return found;
  });
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
  await db
    .insertInto("audit_tree")
    .values(nodes.map((n) => ({ level: n.level, idx: n.index, hash: n.hash.toString("hex") })))
    .execute();
  await db.updateTable("audit_head").set({ hash }).where("id", "=", 1).execute();
}

async function readNodes(db: Kysely<Database>, ids: readonly NodeId[]): Promise<StoredNode[]> {
  const out: StoredNode[] = [];
  for (let i = 0; i < ids.length; i += 200) {
    const chunk = ids.slice(i, i + 200);
    const rows = await db
      .selectFrom("audit_tree")
      .select(["level", "idx", "hash"])
      .where((eb) => eb.or(chunk.map((id) => eb.and([eb("level", "=", id.level), eb("idx", "=", id.index)]))))
      .execute();
    for (const row of rows) out.push({ level: Number(row.level), index: Number(row.idx), hash: Buffer.from(row.hash, "hex") });
  }
  return out;
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

class KyselyCheckpointStore implements CheckpointStore {
  constructor(private readonly db: Kysely<Database>) {}

  async save(record: CheckpointRecord): Promise<void> {
    await this.db
      .insertInto("audit_checkpoints")
      .values({ tree_size: record.size, root_hash: record.rootHash.toString("hex"), note: record.note, created_at: record.createdAt })
      .onConflict((oc) => oc.column("tree_size").doNothing())
      .execute();
  }

  async latest(): Promise<CheckpointRecord | null> {
    const row = await this.db.selectFrom("audit_checkpoints").selectAll().orderBy("tree_size", "desc").limit(1).executeTakeFirst();
    return row ? { size: Number(row.tree_size), rootHash: Buffer.from(row.root_hash, "hex"), note: row.note, createdAt: row.created_at } : null;
  }
}

class KyselyAuditKeyStore implements AuditKeyStore {
  constructor(private readonly db: Kysely<Database>) {}

  async get(id: string): Promise<AuditKeyRecord | null> {
    const row = await this.db.selectFrom("audit_keys").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row) return null;
    return {
      id: row.id,
      name: row.name,
      publicKey: Buffer.from(row.public_key, "base64"),
      sealedPrivateKey: row.sealed_private_key ? Buffer.from(row.sealed_private_key) : null,
      location: row.location,
      createdAt: row.created_at,
    };
  }

  async insert(record: AuditKeyRecord): Promise<boolean> {
    const result = await this.db
      .insertInto("audit_keys")
      .values({
        id: record.id,
        name: record.name,
        public_key: record.publicKey.toString("base64"),
        sealed_private_key: record.sealedPrivateKey,
        location: record.location,
        created_at: record.createdAt,
      })
      .onConflict((oc) => oc.column("id").doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) > 0;
  }
}

export class AuditRepository implements AuditPort {
  readonly checkpoints: CheckpointStore;
  readonly keys: AuditKeyStore;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly inTransaction: <T>(fn: (db: Kysely<Database>) => Promise<T>) => Promise<T>,
  ) {
    this.checkpoints = new KyselyCheckpointStore(db);
    this.keys = new KyselyAuditKeyStore(db);
  }

  appendStandalone(event: SecurityEventInput): Promise<void> {
    return this.inTransaction((tx) => appendEvent(tx, event));
  }

  async list(query: AuditQuery): Promise<SecurityEvent[]> {
    let q = this.db.selectFrom("audit_events").selectAll().orderBy("seq", "desc").limit(query.limit ?? 100);
    if (query.type) q = q.where("type", "=", query.type);
    if (query.subject) q = q.where("subject", "=", query.subject);
    if (query.afterSeq !== undefined) q = q.where("seq", ">", query.afterSeq);
    return (await q.execute()).map(toEvent);
  }

  async scan(fromSeq: number, pageSize: number): Promise<ChainEntry[]> {
    const rows = await this.db.selectFrom("audit_events").selectAll().where("seq", ">", fromSeq).orderBy("seq", "asc").limit(pageSize).execute();
    return rows.map(toEvent);
  }

  async entry(seq: number): Promise<ChainEntry | null> {
    const row = await this.db.selectFrom("audit_events").selectAll().where("seq", "=", seq).executeTakeFirst();
    return row ? toEvent(row) : null;
  }

  async head(): Promise<{ seq: number; hash: string } | null> {
    const row = await this.db.selectFrom("audit_head").select(["seq", "hash"]).where("id", "=", 1).executeTakeFirst();
    return row ? { seq: Number(row.seq), hash: row.hash } : null;
  }

  nodes(ids: readonly NodeId[]): Promise<StoredNode[]> {
    return readNodes(this.db, ids);
  }
}
