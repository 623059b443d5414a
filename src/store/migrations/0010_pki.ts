import type { Kysely } from "kysely";
import { blobType, type Dialect } from "../dialect.js";
import type { MoatMigration } from "./types.js";

/** Device certificates, CRL state, enrollment tokens and trusted manufacturer CAs. */
export const pki: MoatMigration = {
  async up(db: Kysely<any>, dialect: Dialect) {
    await db.schema
      .createTable("certificates")
      .addColumn("serial", "text", (c) => c.primaryKey())
      .addColumn("device_id", "text", (c) => c.notNull())
      .addColumn("issuer_serial", "text", (c) => c.notNull())
      .addColumn("subject", "text", (c) => c.notNull())
      .addColumn("fingerprint", "text", (c) => c.notNull())
      .addColumn("key_kind", "text", (c) => c.notNull())
      .addColumn("not_before", "text", (c) => c.notNull())
      .addColumn("not_after", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("revoked_at", "text")
      .addColumn("revocation_reason", "text")
      .addColumn("superseded_by", "text")
      .addColumn("revoke_after", "text")
      .addColumn("expiry_notified_at", "text")
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("certificate_der", blobType(dialect), (c) => c.notNull())
      .execute();
    await db.schema.createIndex("certificates_device_idx").on("certificates").column("device_id").execute();
    await db.schema.createIndex("certificates_issuer_status_idx").on("certificates").columns(["issuer_serial", "status"]).execute();
    await db.schema.createIndex("certificates_status_not_after_idx").on("certificates").columns(["status", "not_after"]).execute();
    await db.schema.createIndex("certificates_revoke_after_idx").on("certificates").column("revoke_after").execute();

    await db.schema
      .createTable("crls")
      .addColumn("ca_serial", "text", (c) => c.primaryKey())
      .addColumn("crl_number", "bigint", (c) => c.notNull())
      .addColumn("this_update", "text", (c) => c.notNull())
      .addColumn("next_update", "text", (c) => c.notNull())
      .addColumn("crl_der", blobType(dialect), (c) => c.notNull())
      .execute();

    await db.schema
      .createTable("enrollment_tokens")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("device_id", "text", (c) => c.notNull())
      .addColumn("secret_hash", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("created_by", "text", (c) => c.notNull())
      .addColumn("expires_at", "text", (c) => c.notNull())
      .addColumn("used_at", "text")
      .execute();
    await db.schema.createIndex("enrollment_tokens_device_idx").on("enrollment_tokens").column("device_id").execute();

    await db.schema
      .createTable("manufacturer_cas")
      .addColumn("fingerprint", "text", (c) => c.primaryKey())
      .addColumn("subject", "text", (c) => c.notNull())
      .addColumn("certificate_pem", "text", (c) => c.notNull())
      .addColumn("not_after", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .execute();
  },
};
