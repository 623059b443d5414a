import type { Kysely } from "kysely";
import type { MoatMigration } from "./types.js";

/** Scanner runs and their findings; findings point at the device last seen at the scanned address. */
export const scanner: MoatMigration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable("scan_runs")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("started_at", "text", (c) => c.notNull())
      .addColumn("finished_at", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("targets", "text", (c) => c.notNull())
      .addColumn("port_spec", "text", (c) => c.notNull())
      .addColumn("actor", "text", (c) => c.notNull())
      .addColumn("critical_count", "integer", (c) => c.notNull())
      .addColumn("high_count", "integer", (c) => c.notNull())
      .addColumn("medium_count", "integer", (c) => c.notNull())
      .addColumn("low_count", "integer", (c) => c.notNull())
      .addColumn("info_count", "integer", (c) => c.notNull())
      .addColumn("open_ports", "integer", (c) => c.notNull())
      .addColumn("result", "text", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("scan_runs_started_idx").on("scan_runs").column("started_at").execute();

    await db.schema
      .createTable("scan_findings")
      .addColumn("run_id", "text", (c) => c.notNull().references("scan_runs.id").onDelete("cascade"))
      .addColumn("ordinal", "integer", (c) => c.notNull())
      .addColumn("rule_id", "text", (c) => c.notNull())
      .addColumn("severity", "text", (c) => c.notNull())
      .addColumn("title", "text", (c) => c.notNull())
      .addColumn("evidence", "text", (c) => c.notNull())
      .addColumn("remediation", "text", (c) => c.notNull())
      .addColumn("owasp", "text", (c) => c.notNull())
      .addColumn("etsi", "text", (c) => c.notNull())
      .addColumn("address", "text", (c) => c.notNull())
      .addColumn("port", "integer", (c) => c.notNull())
      .addColumn("transport", "text", (c) => c.notNull())
      .addColumn("device_id", "text")
      .addPrimaryKeyConstraint("scan_findings_pk", ["run_id", "ordinal"])
      .execute();
    await db.schema.createIndex("scan_findings_device_idx").on("scan_findings").columns(["device_id", "run_id"]).execute();
  },
};
