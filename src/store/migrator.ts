import { Migrator, type Kysely, type Migration } from "kysely";
import { MoatError } from "../errors.js";
import type { Dialect } from "./dialect.js";
import { MIGRATIONS } from "./migrations/index.js";

export interface MigrationReport {
  applied: string[];
}

/** Runs every pending migration; a no-op when the schema is current. */
export async function migrateToLatest(db: Kysely<any>, dialect: Dialect): Promise<MigrationReport> {
  const migrations: Record<string, Migration> = {};
  for (const [name, migration] of Object.entries(MIGRATIONS)) migrations[name] = { up: (d) => migration.up(d, dialect) };
  // Domains own numbered ranges (0010 pki, 0020 policy, …) and add migrations independently, so a
  // later-numbered one may already have run when a lower-numbered one arrives.
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations }, allowUnorderedMigrations: true });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new MoatError("INTERNAL", `migration ${failed} failed: ${(error as Error).message}`, { cause: error });
  }
  return { applied: (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName) };
}
