import { chmodSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect } from "kysely";
import { MoatError } from "../errors.js";
import type { Dialect } from "./dialect.js";
import type { Database } from "./schema.js";

export const SQLITE_FILE = "moat.db";

export interface DatabaseTarget {
  /** PostgreSQL URL; when absent, SQLite in `dataDir`. */
  databaseUrl?: string | null;
  dataDir: string;
  /** PostgreSQL schema to use (tests isolate themselves in a schema of their own). */
  pgSchema?: string;
  /** SQLite: fail instead of creating the database file (every command but `moat init`). */
  mustExist?: boolean;
  /**
   * SQLite durability. `full` (the default) syncs the WAL on every commit, so an acknowledged write
   * survives a power loss; `normal` may lose the last commits then (it only keeps the file consistent).
   * The bench measures both side by side; nothing in Moat asks for `normal`.
   */
  sqliteSynchronous?: "full" | "normal";
}

export interface OpenedDatabase {
  db: Kysely<Database>;
  dialect: Dialect;
  describe: string;
}


function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "<invalid url>";
  }
}

/** Opens the configured database and checks that it answers. STORE_UNREACHABLE when it does not. */
export async function openDatabase(target: DatabaseTarget): Promise<OpenedDatabase> {
  if (target.databaseUrl) {
    // The PostgreSQL client loads only for installations that use it.
    const { default: pg } = await import("pg");
    // int8 (count(*), identity columns) as numbers: Moat's sequences stay far below 2^53.
    pg.types.setTypeParser(20, (value: string) => Number(value));
    const pool = new pg.Pool({
      connectionString: target.databaseUrl,
      max: 10,
      connectionTimeoutMillis: 5000,
      ...(target.pgSchema ? { options: `-c search_path=${target.pgSchema}` } : {}),
    });
    // An idle client's error (server restart) must not crash the process; the next query reports it.
    pool.on("error", () => {});
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    try {
      const client = await pool.connect();
      client.release();
    } catch (error) {
      await pool.end().catch(() => {});
      throw new MoatError("STORE_UNREACHABLE", `cannot connect to PostgreSQL at ${redact(target.databaseUrl)}: ${(error as Error).message}`, { cause: error });
    }
    return { db, dialect: "postgres", describe: `postgres ${redact(target.databaseUrl)}` };
  }
  const file = join(target.dataDir, SQLITE_FILE);
  let sqlite: BetterSqlite3.Database;
  try {
    if (target.mustExist && !existsSync(file))
      throw new MoatError("DATA_DIR_NOT_INITIALIZED", `no Moat database in ${target.dataDir}: run moat init (or point --data-dir at an initialised data dir)`);
    mkdirSync(target.dataDir, { recursive: true, mode: 0o700 });
    sqlite = new BetterSqlite3(file);
    // The database holds sealed keys and token hashes: owner-only, like the KEK.
    chmodSync(file, 0o600);
    sqlite.pragma("journal_mode = WAL");
    sqlite.pragma("foreign_keys = ON");
    sqlite.pragma("busy_timeout = 5000");
    sqlite.pragma(`synchronous = ${target.sqliteSynchronous === "normal" ? "NORMAL" : "FULL"}`);
    for (const suffix of ["-wal", "-shm"]) if (existsSync(file + suffix)) chmodSync(file + suffix, 0o600);
  } catch (error) {
    if (error instanceof MoatError) throw error;
    throw new MoatError("STORE_UNREACHABLE", `cannot open SQLite database ${file}: ${(error as Error).message}`, { cause: error });
  }
  return { db: new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }), dialect: "sqlite", describe: `sqlite ${file}` };
}
