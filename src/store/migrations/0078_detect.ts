import type { Kysely } from "kysely";
import type { MoatMigration } from "./types.js";

/**
 * Detection: alerts (one unresolved per rule and subject, with a count and bounded evidence) and the
 * stored rule set (built-in overrides and custom rules, as checked JSON). The subject of an alert is a
 * device or an address range and may outlive a device record, so it carries no foreign key.
 */
export const detect: MoatMigration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable("detect_alerts")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("rule", "text", (c) => c.notNull())
      .addColumn("subject_kind", "text", (c) => c.notNull())
      .addColumn("subject_id", "text", (c) => c.notNull())
      .addColumn("severity", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("count", "integer", (c) => c.notNull())
      .addColumn("first_seen", "text", (c) => c.notNull())
      .addColumn("last_seen", "text", (c) => c.notNull())
      .addColumn("evidence", "text", (c) => c.notNull())
      .addColumn("acknowledged_by", "text")
      .addColumn("resolved_by", "text")
      .execute();
    await db.schema.createIndex("detect_alerts_subject_idx").on("detect_alerts").columns(["rule", "subject_kind", "subject_id", "status"]).execute();
    await db.schema.createIndex("detect_alerts_device_idx").on("detect_alerts").columns(["subject_id", "first_seen"]).execute();
    await db.schema
      .createTable("detect_rules")
      .addColumn("name", "text", (c) => c.primaryKey())
      .addColumn("definition", "text", (c) => c.notNull())
      .addColumn("updated_at", "text", (c) => c.notNull())
      .addColumn("updated_by", "text", (c) => c.notNull())
      .execute();
  },
};
