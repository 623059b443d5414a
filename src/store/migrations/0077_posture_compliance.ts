import type { Kysely } from "kysely";
import { autoId, type Dialect } from "../dialect.js";
import type { MoatMigration } from "./types.js";

/**
 * Posture runs with their findings (src/posture), suppressions, and the compliance domain's manual
 * attestations and signed reports (src/compliance).
 */
export const postureCompliance: MoatMigration = {
  async up(db: Kysely<any>, dialect: Dialect) {
    await db.schema
      .createTable("posture_runs")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("run_at", "text", (c) => c.notNull())
      .addColumn("finished_at", "text", (c) => c.notNull())
      .addColumn("scope", "text", (c) => c.notNull())
      .addColumn("actor", "text", (c) => c.notNull())
      .addColumn("checks", "text", (c) => c.notNull())
      .addColumn("critical_count", "integer", (c) => c.notNull())
      .addColumn("high_count", "integer", (c) => c.notNull())
      .addColumn("medium_count", "integer", (c) => c.notNull())
      .addColumn("low_count", "integer", (c) => c.notNull())
      .addColumn("info_count", "integer", (c) => c.notNull())
      .addColumn("suppressed", "integer", (c) => c.notNull())
      .addColumn("audit_seq", "bigint")
      .execute();
    await db.schema.createIndex("posture_runs_scope_at").on("posture_runs").columns(["scope", "run_at"]).execute();
    await db.schema
      .createTable("posture_findings")
      // A run's findings go with it (older runs' findings are pruned; their summaries stay).
      .addColumn("run_id", "text", (c) => c.notNull().references("posture_runs.id").onDelete("cascade"))
      .addColumn("ordinal", "integer", (c) => c.notNull())
      .addColumn("finding_key", "text", (c) => c.notNull())
      .addColumn("check_id", "text", (c) => c.notNull())
      .addColumn("severity", "text", (c) => c.notNull())
      .addColumn("resources", "text", (c) => c.notNull())
      // " id1 id2 " of the devices the finding names, so one device's findings are found again.
      .addColumn("device_ids", "text", (c) => c.notNull())
      .addColumn("evidence", "text", (c) => c.notNull())
      .addColumn("fix", "text", (c) => c.notNull())
      .addColumn("suppressed", "text")
      .addPrimaryKeyConstraint("posture_findings_pk", ["run_id", "ordinal"])
      .execute();
    await db.schema.createIndex("posture_findings_key").on("posture_findings").columns(["run_id", "finding_key"]).execute();
    await db.schema.createIndex("posture_findings_check").on("posture_findings").columns(["run_id", "check_id"]).execute();
    await autoId(db.schema.createTable("posture_suppressions"), dialect, "id")
      .addColumn("check_id", "text", (c) => c.notNull())
      .addColumn("resource_id", "text", (c) => c.notNull())
      .addColumn("reason", "text", (c) => c.notNull())
      .addColumn("expires_at", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("created_by", "text", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("posture_suppressions_expires").on("posture_suppressions").column("expires_at").execute();
    await autoId(db.schema.createTable("compliance_attestations"), dialect, "id")
      .addColumn("standard", "text", (c) => c.notNull())
      .addColumn("control_id", "text", (c) => c.notNull())
      .addColumn("statement", "text", (c) => c.notNull())
      .addColumn("evidence_url", "text")
      .addColumn("owner", "text", (c) => c.notNull())
      .addColumn("expires_at", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("created_by", "text", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("compliance_attestations_control").on("compliance_attestations").columns(["standard", "control_id"]).execute();
    await db.schema
      .createTable("compliance_reports")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("standard", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("actor", "text", (c) => c.notNull())
      // SHA-256 (hex) of the signed JSON report as written; also in its compliance.report event.
      .addColumn("hash", "text", (c) => c.notNull())
      // JSON: score and the status of each control (what the next report compares against).
      .addColumn("summary", "text", (c) => c.notNull())
      .addColumn("report", "text", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("compliance_reports_standard_at").on("compliance_reports").columns(["standard", "created_at"]).execute();
  },
};
