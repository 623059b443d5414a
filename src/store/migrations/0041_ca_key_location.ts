import type { Kysely } from "kysely";
import type { MoatMigration } from "./types.js";

/**
 * `moat init --ca-keys pkcs11`: a CA key generated in a PKCS#11 token is recorded by its location
 * (`pkcs11:<token label>/<object label>`) instead of a sealed key. Null for keys sealed here.
 */
export const caKeyLocation: MoatMigration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable("ca_certificates").addColumn("key_location", "text").execute();
  },
};
