import type { Kysely } from "kysely";
import type { Dialect } from "../dialect.js";

/** A forward-only migration; it receives the dialect for the few DDL differences (blobType, autoId). */
export interface MoatMigration {
  up(db: Kysely<any>, dialect: Dialect): Promise<void>;
}
