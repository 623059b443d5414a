import type { Kysely } from "kysely";
import type { MoatMigration } from "./types.js";

/** Roles (with their rules as JSON) and role assignments to devices, device groups and operator tokens. */
export const policy: MoatMigration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable("roles")
      .addColumn("name", "text", (c) => c.primaryKey())
      .addColumn("description", "text", (c) => c.notNull())
      .addColumn("rules", "text", (c) => c.notNull())
      .addColumn("builtin", "integer", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("updated_at", "text", (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("role_assignments")
      .addColumn("role", "text", (c) => c.notNull())
      .addColumn("kind", "text", (c) => c.notNull())
      .addColumn("target", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("created_by", "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("role_assignments_pk", ["role", "kind", "target"])
      .execute();
    // Lookups by holder (compile, `role show`) and by role (delete).
    await db.schema.createIndex("role_assignments_target_idx").on("role_assignments").columns(["kind", "target"]).execute();
  },
};
