import type { Kysely } from "kysely";
import { blobType, type Dialect } from "../dialect.js";
import type { MoatMigration } from "./types.js";

/**
 * Detection response (src/respond): playbooks, the actions they took, range bans, notification
 * targets with their deliveries (dead letters included), and incidents with the alerts they group.
 */
export const respond: MoatMigration = {
  async up(db: Kysely<any>, dialect: Dialect) {
    await db.schema
      .createTable("respond_playbooks")
      .addColumn("name", "text", (c) => c.primaryKey())
      .addColumn("rule", "text", (c) => c.notNull())
      .addColumn("definition", "text", (c) => c.notNull())
      .addColumn("source", "text", (c) => c.notNull())
      .addColumn("updated_at", "text", (c) => c.notNull())
      .addColumn("updated_by", "text", (c) => c.notNull())
      .execute();

    // Actions outlive the playbook that took them (the record of what was done stays), so no foreign key to it.
    await db.schema
      .createTable("respond_actions")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("alert_id", "text", (c) => c.notNull())
      .addColumn("playbook", "text")
      .addColumn("rule", "text", (c) => c.notNull())
      .addColumn("action", "text", (c) => c.notNull())
      .addColumn("subject_kind", "text", (c) => c.notNull())
      .addColumn("subject_id", "text", (c) => c.notNull())
      .addColumn("mode", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("reason", "text")
      .addColumn("detail", "text", (c) => c.notNull())
      .addColumn("actor", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("undone_at", "text")
      .addColumn("undone_by", "text")
      .execute();
    await db.schema.createIndex("respond_actions_alert_idx").on("respond_actions").columns(["alert_id", "created_at"]).execute();
    await db.schema.createIndex("respond_actions_cap_idx").on("respond_actions").columns(["playbook", "rule", "created_at"]).execute();

    // A ban is lifted with its action's undo; the action row stays, so the ban points at it without restricting anything.
    await db.schema
      .createTable("respond_bans")
      .addColumn("range", "text", (c) => c.primaryKey())
      .addColumn("action_id", "text", (c) => c.references("respond_actions.id").onDelete("set null"))
      .addColumn("expires_at", "text")
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("created_by", "text", (c) => c.notNull())
      .execute();

    await db.schema
      .createTable("notify_targets")
      .addColumn("name", "text", (c) => c.primaryKey())
      .addColumn("kind", "text", (c) => c.notNull())
      .addColumn("config", "text", (c) => c.notNull())
      .addColumn("sealed_secret", blobType(dialect))
      .addColumn("min_severity", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("created_by", "text", (c) => c.notNull())
      .execute();

    // Deliveries go with their target: a removed target's queue and dead letters have nowhere to go.
    await db.schema
      .createTable("notify_deliveries")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("target", "text", (c) => c.notNull().references("notify_targets.name").onDelete("cascade"))
      .addColumn("event_type", "text", (c) => c.notNull())
      .addColumn("payload", "text", (c) => c.notNull())
      .addColumn("attempts", "integer", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("next_attempt_at", "text")
      .addColumn("last_error", "text")
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("updated_at", "text", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("notify_deliveries_due_idx").on("notify_deliveries").columns(["status", "next_attempt_at"]).execute();

    await db.schema
      .createTable("incidents")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("title", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("severity", "text", (c) => c.notNull())
      .addColumn("alert_ids", "text", (c) => c.notNull())
      .addColumn("from_seq", "bigint", (c) => c.notNull())
      .addColumn("opened_at", "text", (c) => c.notNull())
      .addColumn("opened_by", "text", (c) => c.notNull())
      .addColumn("closed_at", "text")
      .addColumn("closed_by", "text")
      .addColumn("resolution", "text")
      .execute();
    await db.schema.createIndex("incidents_opened_idx").on("incidents").columns(["status", "opened_at"]).execute();
  },
};
