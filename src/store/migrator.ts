import { sql, type Kysely } from "kysely";
import { MoatError } from "../errors.js";
import { isRetryableWriteConflict, type Dialect } from "./dialect.js";
import { BASELINE, MIGRATIONS, type NamedMigration } from "./migrations/index.js";

export interface MigrationReport {
  applied: string[];
}

/** Where a database stands against this build's migration sequence. */
export interface SchemaStatus {
  /** Recorded in the database, in sequence order. */
  applied: string[];
  /** In the sequence, not yet recorded: `moat migrate` would run these, in this order. */
  pending: string[];
  /** Recorded but not in this build's sequence: a newer `moat` migrated this database. */
  unknown: string[];
}

/**
 * The table that records applied migrations. The name and columns are those of Kysely's Migrator,
 * which earlier versions used, so their records stay valid as they are.
 */
const MIGRATION_TABLE = "kysely_migration";

/** Any constant: the advisory lock that serialises migrations of several nodes starting at once. */
const MIGRATION_LOCK_KEY = 0x6d6f6174;

/**
 * How long a SQLite migrator waits for another process's migration to commit. SQLite's own busy wait
 * (busy_timeout, 5 s) is shorter than a rebuild of a large table may take.
 */
const SQLITE_LOCK_WAIT_MS = 10 * 60_000;

const BASELINE_NAMES = new Set(BASELINE);

async function migrationTableExists(db: Kysely<any>, dialect: Dialect): Promise<boolean> {
  const { rows } =
    dialect === "sqlite"
      ? await sql`select 1 as found from sqlite_master where type = 'table' and name = ${MIGRATION_TABLE}`.execute(db)
      : // The schema the store works in; another schema's table of the same name is not ours.
        await sql`select 1 as found from information_schema.tables where table_schema = current_schema() and table_name = ${MIGRATION_TABLE}`.execute(db);
  return rows.length > 0;
}

async function recordedNames(db: Kysely<any>, dialect: Dialect): Promise<Set<string>> {
  if (!(await migrationTableExists(db, dialect))) return new Set();
  const { rows } = await sql<{ name: string }>`select name from ${sql.table(MIGRATION_TABLE)}`.execute(db);
  return new Set(rows.map((r) => r.name));
}

function statusOf(recorded: ReadonlySet<string>, sequence: readonly NamedMigration[]): SchemaStatus {
  const known = new Set(sequence.map((m) => m.name));
  return {
    applied: sequence.filter((m) => recorded.has(m.name)).map((m) => m.name),
    pending: sequence.filter((m) => !recorded.has(m.name)).map((m) => m.name),
    unknown: [...recorded].filter((name) => !known.has(name)).sort(),
  };
}

/** This build's migrations against the database's records. Reads only. */
export async function schemaStatus(db: Kysely<any>, dialect: Dialect, sequence: readonly NamedMigration[] = MIGRATIONS): Promise<SchemaStatus> {
  return statusOf(await recordedNames(db, dialect), sequence);
}

function newerError(status: SchemaStatus, describe: string): MoatError {
  return new MoatError(
    "SCHEMA_NEWER",
    `the database (${describe}) was migrated by a newer moat (migrations this moat does not know: ${status.unknown.join(", ")}); run that version or a later one`,
    { detail: { unknown: status.unknown } },
  );
}

/**
 * Refuses a database whose schema is not exactly this build's: SCHEMA_OUTDATED (run `moat migrate`)
 * or SCHEMA_NEWER (this `moat` is older than the database). Commands that do not migrate call this
 * so they neither work on a schema they do not understand nor change it.
 */
export async function assertSchemaCurrent(db: Kysely<any>, dialect: Dialect, describe: string): Promise<void> {
  const status = await schemaStatus(db, dialect);
  if (status.unknown.length > 0) throw newerError(status, describe);
  if (status.pending.length > 0)
    throw new MoatError(
      "SCHEMA_OUTDATED",
      `the database (${describe}) needs ${status.pending.length} migration(s) this moat brings (${status.pending.join(", ")}): run moat migrate`,
      { detail: { pending: status.pending } },
    );
}

/**
 * Recorded migrations must be a prefix of the sequence. The one exception is the frozen baseline,
 * whose members earlier versions applied in any order, so a gap is allowed only before a baseline member.
 */
function assertNoGaps(status: SchemaStatus, sequence: readonly NamedMigration[]): void {
  const applied = new Set(status.applied);
  const firstPending = sequence.findIndex((m) => !applied.has(m.name));
  if (firstPending < 0) return;
  const later = sequence.slice(firstPending + 1).find((m) => applied.has(m.name) && !BASELINE_NAMES.has(m.name));
  if (later)
    throw new MoatError(
      "MIGRATION_FAILED",
      `the database records migration ${later.name} but not ${sequence[firstPending]!.name}, which comes before it; this history was not written by moat, nothing was changed`,
      { detail: { missing: sequence[firstPending]!.name, recorded: later.name } },
    );
}

async function ensureMigrationTable(db: Kysely<any>): Promise<void> {
  // The column types of Kysely's Migrator, so tables created by earlier versions and by this one agree.
  await db.schema
    .createTable(MIGRATION_TABLE)
    .ifNotExists()
    .addColumn("name", "varchar(255)", (c) => c.notNull().primaryKey())
    .addColumn("timestamp", "varchar(255)", (c) => c.notNull())
    .execute();
}

/** SQLite: foreign-key violations left by a migration (checked before its commit, see applyOne). */
async function sqliteForeignKeyViolations(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ table: string; rowid: number | null; parent: string }>`pragma foreign_key_check`.execute(db);
  return rows.map((r) => `${r.table} row ${r.rowid ?? "?"} → ${r.parent}`);
}

/** Opens the migration's transaction; SQLite takes the write lock at once, so processes migrating one file take turns. */
async function begin(db: Kysely<any>, dialect: Dialect): Promise<void> {
  if (dialect === "postgres") {
    await sql`begin`.execute(db);
    return;
  }
  const deadline = Date.now() + SQLITE_LOCK_WAIT_MS;
  for (;;) {
    try {
      await sql`begin immediate`.execute(db);
      return;
    } catch (error) {
      if (!isRetryableWriteConflict(error) || Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/**
 * Runs one migration and records it, in one transaction: it applies completely or not at all.
 * On SQLite, foreign-key enforcement is switched off around the transaction (the pragma is ignored
 * inside one) so a migration may rebuild a referenced table, and the whole database is checked for
 * violations before the commit instead.
 */
async function applyOne(db: Kysely<any>, dialect: Dialect, step: NamedMigration): Promise<boolean> {
  if (dialect === "sqlite") await sql`pragma foreign_keys = off`.execute(db);
  try {
    await begin(db, dialect);
    try {
      // Another process may have run it while this one waited for the lock.
      if ((await recordedNames(db, dialect)).has(step.name)) {
        await sql`rollback`.execute(db);
        return false;
      }
      await step.migration.up(db, dialect);
      if (dialect === "sqlite") {
        const violations = await sqliteForeignKeyViolations(db);
        if (violations.length > 0) throw new Error(`rows reference missing rows: ${violations.slice(0, 10).join("; ")}`);
      }
      await db.insertInto(MIGRATION_TABLE).values({ name: step.name, timestamp: new Date().toISOString() }).execute();
      await sql`commit`.execute(db);
      return true;
    } catch (error) {
      await sql`rollback`.execute(db).catch(() => {});
      const detail = (error as { detail?: unknown }).detail;
      throw new MoatError(
        "MIGRATION_FAILED",
        `migration ${step.name} failed and was rolled back, the database is as it was before it: ${(error as Error).message}${typeof detail === "string" ? ` (${detail})` : ""}`,
        { cause: error, detail: { migration: step.name } },
      );
    }
  } finally {
    if (dialect === "sqlite") await sql`pragma foreign_keys = on`.execute(db);
  }
}

async function run(db: Kysely<any>, dialect: Dialect, sequence: readonly NamedMigration[]): Promise<MigrationReport> {
  await ensureMigrationTable(db);
  const status = await schemaStatus(db, dialect, sequence);
  if (status.unknown.length > 0) throw newerError(status, "this database");
  assertNoGaps(status, sequence);
  const applied: string[] = [];
  for (const step of sequence) {
    if (!status.pending.includes(step.name)) continue;
    if (await applyOne(db, dialect, step)) applied.push(step.name);
  }
  return { applied };
}

/**
 * Runs every pending migration in sequence order, each in its own transaction; a no-op when the
 * schema is current. `sequence` is for tests that build an older schema.
 */
export async function migrateToLatest(db: Kysely<any>, dialect: Dialect, sequence: readonly NamedMigration[] = MIGRATIONS): Promise<MigrationReport> {
  // One connection for the whole run: the transactions, the SQLite pragma and the PostgreSQL lock are per connection.
  return db.connection().execute(async (connection) => {
    if (dialect === "sqlite") return run(connection, dialect, sequence);
    // Several nodes starting together: a session advisory lock lets one migrate while the others wait.
    await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`.execute(connection);
    try {
      return await run(connection, dialect, sequence);
    } finally {
      await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.execute(connection);
    }
  });
}
