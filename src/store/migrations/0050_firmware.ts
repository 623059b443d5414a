import type { Kysely } from "kysely";
import { blobType, type Dialect } from "../dialect.js";
import type { MoatMigration } from "./types.js";

/** Firmware root/signing keys and TUF role keys (private halves sealed), revocation lists, OTA campaigns. */
export const firmware: MoatMigration = {
  async up(db: Kysely<any>, dialect: Dialect) {
    await db.schema
      .createTable("firmware_keys")
      .addColumn("name", "text", (c) => c.primaryKey())
      .addColumn("purpose", "text", (c) => c.notNull())
      .addColumn("alg", "text", (c) => c.notNull())
      .addColumn("key_id", "text", (c) => c.notNull().unique())
      .addColumn("public_key", blobType(dialect), (c) => c.notNull())
      .addColumn("sealed_private_key", blobType(dialect))
      .addColumn("certificate", "text")
      .addColumn("issuer", "text")
      .addColumn("not_before", "text")
      .addColumn("not_after", "text")
      .addColumn("revoked_at", "text")
      .addColumn("revocation_reason", "text")
      .addColumn("created_at", "text", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("firmware_keys_purpose_idx").on("firmware_keys").column("purpose").execute();

    await db.schema
      .createTable("firmware_revocation_lists")
      .addColumn("version", "integer", (c) => c.primaryKey())
      .addColumn("document", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .execute();

    await db.schema
      .createTable("ota_campaigns")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("device_group", "text", (c) => c.notNull())
      .addColumn("status", "text", (c) => c.notNull())
      .addColumn("data", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("updated_at", "text", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("ota_campaigns_status_idx").on("ota_campaigns").columns(["status", "created_at"]).execute();
  },
};
