import type { Kysely } from "kysely";
import { autoId, type Dialect } from "../dialect.js";
import type { MoatMigration } from "./types.js";

/**
 * The live MQTT sessions (src/sessions): one row per open connection, written from the data plane's
 * `device.connected` / `device.disconnected` events; `mqtt_nodes` holds each data-plane node's
 * heartbeat, so the rows of a node that died without reporting its disconnects stop counting and are
 * swept; `mqtt_session_takeovers` keeps client-id takeovers [MQTT-3.1.4-2].
 */
export const mqttSessions: MoatMigration = {
  async up(db: Kysely<any>, dialect: Dialect) {
    await db.schema
      .createTable("mqtt_nodes")
      .addColumn("node_id", "text", (c) => c.primaryKey())
      .addColumn("started_at", "text", (c) => c.notNull())
      .addColumn("heartbeat_at", "text", (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("mqtt_sessions")
      .addColumn("session_id", "text", (c) => c.primaryKey())
      // A deleted device has no sessions to remember.
      .addColumn("device_id", "text", (c) => c.notNull().references("devices.id").onDelete("cascade"))
      .addColumn("client_id", "text", (c) => c.notNull())
      // A node that is swept takes its sessions with it.
      .addColumn("node_id", "text", (c) => c.notNull().references("mqtt_nodes.node_id").onDelete("cascade"))
      .addColumn("address", "text")
      .addColumn("listener", "text")
      .addColumn("method", "text")
      .addColumn("cert_serial", "text")
      .addColumn("credential_id", "text")
      .addColumn("connected_at", "text", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("mqtt_sessions_device").on("mqtt_sessions").column("device_id").execute();
    await db.schema.createIndex("mqtt_sessions_client").on("mqtt_sessions").column("client_id").execute();
    await db.schema.createIndex("mqtt_sessions_node").on("mqtt_sessions").column("node_id").execute();
    await db.schema.createIndex("mqtt_sessions_serial").on("mqtt_sessions").column("cert_serial").execute();
    await autoId(db.schema.createTable("mqtt_session_takeovers"), dialect, "id")
      .addColumn("at", "text", (c) => c.notNull())
      .addColumn("client_id", "text", (c) => c.notNull())
      // Takeovers are history about a device; they go with it.
      .addColumn("device_id", "text", (c) => c.notNull().references("devices.id").onDelete("cascade"))
      .addColumn("previous_session", "text", (c) => c.notNull())
      .addColumn("previous_address", "text")
      .addColumn("previous_node", "text")
      .addColumn("session_id", "text", (c) => c.notNull())
      .addColumn("address", "text")
      .addColumn("node_id", "text", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("mqtt_session_takeovers_at").on("mqtt_session_takeovers").column("at").execute();
    await db.schema.createIndex("mqtt_session_takeovers_device").on("mqtt_session_takeovers").column("device_id").execute();
  },
};
