import type { Kysely } from "kysely";
import type { NewTakeover, SessionQuery, SessionRecord, SessionRepository, TakeoverRecord } from "../../sessions/index.js";
import type { Database, MqttSessionsTable, MqttSessionTakeoversTable } from "../schema.js";

function toSession(row: MqttSessionsTable): SessionRecord {
  return {
    sessionId: row.session_id,
    deviceId: row.device_id,
    clientId: row.client_id,
    nodeId: row.node_id,
    address: row.address,
    listener: row.listener,
    method: row.method,
    certSerial: row.cert_serial,
    credentialId: row.credential_id,
    connectedAt: row.connected_at,
  };
}

function toTakeover(row: Omit<MqttSessionTakeoversTable, "id"> & { id: number }): TakeoverRecord {
  return {
    id: Number(row.id),
    at: row.at,
    clientId: row.client_id,
    deviceId: row.device_id,
    previousSession: row.previous_session,
    previousAddress: row.previous_address,
    previousNode: row.previous_node,
    session: row.session_id,
    address: row.address,
    nodeId: row.node_id,
  };
}

/** The live-session record (src/sessions) over `mqtt_sessions`, `mqtt_nodes` and `mqtt_session_takeovers`. */
export class KyselySessionRepository implements SessionRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async open(session: SessionRecord): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      // The node's row exists before its first session (the sessions' foreign key), even after a sweep.
      await trx
        .insertInto("mqtt_nodes")
        .values({ node_id: session.nodeId, started_at: session.connectedAt, heartbeat_at: session.connectedAt })
        .onConflict((oc) => oc.column("node_id").doUpdateSet({ heartbeat_at: session.connectedAt }))
        .execute();
      await trx
        .insertInto("mqtt_sessions")
        .values({
          session_id: session.sessionId,
          device_id: session.deviceId,
          client_id: session.clientId,
          node_id: session.nodeId,
          address: session.address,
          listener: session.listener,
          method: session.method,
          cert_serial: session.certSerial,
          credential_id: session.credentialId,
          connected_at: session.connectedAt,
        })
        .onConflict((oc) => oc.column("session_id").doNothing())
        .execute();
    });
  }

  async close(sessionId: string): Promise<void> {
    await this.db.deleteFrom("mqtt_sessions").where("session_id", "=", sessionId).execute();
  }

  async othersWithClientId(clientId: string, sessionId: string, aliveSince: string): Promise<SessionRecord[]> {
    const rows = await this.db
      .selectFrom("mqtt_sessions")
      .innerJoin("mqtt_nodes", "mqtt_nodes.node_id", "mqtt_sessions.node_id")
      .selectAll("mqtt_sessions")
      .where("mqtt_sessions.client_id", "=", clientId)
      .where("mqtt_sessions.session_id", "!=", sessionId)
      .where("mqtt_nodes.heartbeat_at", ">=", aliveSince)
      .execute();
    return rows.map(toSession);
  }

  async recordTakeover(t: NewTakeover): Promise<void> {
    await this.db
      .insertInto("mqtt_session_takeovers")
      .values({
        at: t.at,
        client_id: t.clientId,
        device_id: t.deviceId,
        previous_session: t.previousSession,
        previous_address: t.previousAddress,
        previous_node: t.previousNode,
        session_id: t.session,
        address: t.address,
        node_id: t.nodeId,
      })
      .execute();
  }

  async heartbeat(nodeIds: readonly string[], at: string): Promise<void> {
    for (const nodeId of nodeIds)
      await this.db
        .insertInto("mqtt_nodes")
        .values({ node_id: nodeId, started_at: at, heartbeat_at: at })
        .onConflict((oc) => oc.column("node_id").doUpdateSet({ heartbeat_at: at }))
        .execute();
  }

  async sweep(staleBefore: string): Promise<number> {
    return this.db.transaction().execute(async (trx) => {
      const stale = trx.selectFrom("mqtt_nodes").select("node_id").where("heartbeat_at", "<", staleBefore);
      const removed = await trx.deleteFrom("mqtt_sessions").where("node_id", "in", stale).executeTakeFirst();
      await trx.deleteFrom("mqtt_nodes").where("heartbeat_at", "<", staleBefore).execute();
      return Number(removed.numDeletedRows);
    });
  }

  async dropNode(nodeId: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom("mqtt_sessions").where("node_id", "=", nodeId).execute();
      await trx.deleteFrom("mqtt_nodes").where("node_id", "=", nodeId).execute();
    });
  }

  async list(query: SessionQuery): Promise<SessionRecord[]> {
    let q = this.db
      .selectFrom("mqtt_sessions")
      .innerJoin("mqtt_nodes", "mqtt_nodes.node_id", "mqtt_sessions.node_id")
      .selectAll("mqtt_sessions")
      .where("mqtt_nodes.heartbeat_at", ">=", query.aliveSince);
    if (query.deviceId) q = q.where("mqtt_sessions.device_id", "=", query.deviceId);
    if (query.after) q = q.where("mqtt_sessions.session_id", ">", query.after);
    const rows = await q.orderBy("mqtt_sessions.session_id", "asc").limit(query.limit).execute();
    return rows.map(toSession);
  }

  async count(aliveSince: string): Promise<number> {
    const row = await this.db
      .selectFrom("mqtt_sessions")
      .innerJoin("mqtt_nodes", "mqtt_nodes.node_id", "mqtt_sessions.node_id")
      .select((eb) => eb.fn.countAll().as("n"))
      .where("mqtt_nodes.heartbeat_at", ">=", aliveSince)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async takeovers(query: { since?: string; deviceId?: string; limit: number }): Promise<TakeoverRecord[]> {
    let q = this.db.selectFrom("mqtt_session_takeovers").selectAll();
    if (query.since) q = q.where("at", ">=", query.since);
    if (query.deviceId) q = q.where("device_id", "=", query.deviceId);
    const rows = await q.orderBy("id", "desc").limit(query.limit).execute();
    return rows.map(toTakeover);
  }
}
