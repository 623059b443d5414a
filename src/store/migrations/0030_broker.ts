import type { Kysely } from "kysely";
import { blobType, type Dialect } from "../dialect.js";
import type { MoatMigration } from "./types.js";

/** Device JWT credentials for the MQTT broker: registered public keys and sealed HMAC secrets. */
export const broker: MoatMigration = {
  async up(db: Kysely<any>, dialect: Dialect) {
    await db.schema
      .createTable("device_keys")
      .addColumn("device_id", "text", (c) => c.notNull())
      .addColumn("key_id", "text", (c) => c.notNull())
      .addColumn("spki_pem", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("created_by", "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("device_keys_pk", ["device_id", "key_id"])
      .execute();
    await db.schema
      .createTable("device_secrets")
      .addColumn("device_id", "text", (c) => c.notNull())
      .addColumn("secret_id", "text", (c) => c.notNull())
      .addColumn("sealed", blobType(dialect), (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .addColumn("not_after", "text")
      .addPrimaryKeyConstraint("device_secrets_pk", ["device_id", "secret_id"])
      .execute();
  },
};
