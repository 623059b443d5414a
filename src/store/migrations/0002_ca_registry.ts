import type { Kysely } from "kysely";
import { blobType, type Dialect } from "../dialect.js";
import type { MoatMigration } from "./types.js";

/** Moat's own CA and server certificates, with their keys sealed by the envelope (never plaintext). */
export const caRegistry: MoatMigration = {
  async up(db: Kysely<any>, dialect: Dialect) {
    await db.schema
      .createTable("ca_certificates")
      .addColumn("serial", "text", (c) => c.primaryKey())
      .addColumn("role", "text", (c) => c.notNull())
      .addColumn("key_type", "text", (c) => c.notNull())
      .addColumn("subject", "text", (c) => c.notNull())
      .addColumn("certificate_pem", "text", (c) => c.notNull())
      .addColumn("sealed_key", blobType(dialect))
      .addColumn("not_after", "text", (c) => c.notNull())
      .addColumn("active", "integer", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("ca_certificates_role_idx").on("ca_certificates").column("role").execute();
  },
};
