import { Migrator, sql, type Kysely, type Migration } from "kysely";
import { MoatError } from "../errors.js";
import type { Dialect } from "./dialect.js";
import { MIGRATIONS } from "./migrations/index.js";

export interface MigrationReport {
  applied: string[];
}

/** Any constant: the advisory lock that serialises migrations of several nodes starting at once. */
const MIGRATION_LOCK_KEY = 0x6d6f6174;

async function run(db: Kysely<any>, dialect: Dialect, schema?: string): Promise<MigrationReport> {
  const migrations: Record<string, Migration> = {};
  for (const [name, migration] of Object.entries(MIGRATIONS)) migrations[name] = { up: (d) => migration.up(d, dialect) };
  // Domains own numbered ranges (0010 pki, 0020 policy, …) and add migrations independently, so a
  // later-numbered one may already have run when a lower-numbered one arrives.
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    allowUnorderedMigrations: true,
    // Name the schema: otherwise Kysely's table check also sees migration tables of other schemas.
    ...(schema ? { migrationTableSchema: schema } : {}),
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new MoatError("INTERNAL", `migration ${failed} failed: ${(error as Error).message}`, { cause: error });
  }
  return { applied: (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName) };
}

/** Runs every pending migration; a no-op when the schema is current. */
export async function migrateToLatest(db: Kysely<any>, dialect: Dialect): Promise<MigrationReport> {
  if (dialect === "sqlite") return run(db, dialect);
  // Kysely's own lock table is created with "if not exists", which races when several processes
  // start together on PostgreSQL; a session advisory lock on one connection serialises them first.
  return db.connection().execute(async (connection) => {
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`.execute(connection);
    try {
      const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(connection);
      return await run(connection, dialect, rows[0]!.schema);
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.execute(connection);
    }
  });
}
