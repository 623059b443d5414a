import type { Kysely } from "kysely";
import type { MoatMigration } from "./types.js";

/**
 * With keys.provider=pkcs11, Ed25519 and P-256 firmware keys are generated in the token and recorded
 * by their location (`pkcs11:<token label>/<object label>`) instead of a sealed key. Null for keys
 * sealed here (and for hybrid keys, which the token cannot hold).
 */
export const firmwareKeyLocation: MoatMigration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable("firmware_keys").addColumn("location", "text").execute();
  },
};
