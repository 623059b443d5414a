import { randomBytes } from "node:crypto";
import pg from "pg";
import { describe } from "vitest";
import { Store } from "../../src/store/index.js";
import { IN_CI, requirement } from "./requirements.js";
import { tempDir } from "./temp.js";

export const PG_URL = process.env.MOAT_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

let pgAvailable: boolean | undefined;
async function postgresAnswers(): Promise<boolean> {
  if (pgAvailable !== undefined) return pgAvailable;
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query("select 1");
    pgAvailable = true;
  } catch {
    pgAvailable = false;
  } finally {
    await client.end().catch(() => {});
  }
  return pgAvailable;
}

export const pgOk = requirement("PostgreSQL", await postgresAnswers(), `no server answers at ${PG_URL}; start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`);

export interface TestDatabase {
  /** For SQLite the data dir holding moat.db; a scratch dir for PostgreSQL. */
  dataDir: string;
  databaseUrl: string | null;
  pgSchema?: string;
  /** The PostgreSQL database that holds `pgSchema` (PG_URL, or a database of its own when asked for). */
  pgUrl?: string;
  /** Opens (and migrates) a store on this database; several may be opened (like several processes). */
  openStore(): Promise<Store>;
  cleanup(): Promise<void>;
}

export interface TestDatabaseOptions {
  /**
   * PostgreSQL only: put the schema in a database of its own. Kysely's introspector (used by its Migrator)
   * scans every schema of the database and fails with "schema … does not exist" when another test file drops
   * its schema during the scan; a test that runs Kysely's Migrator needs a database no one else touches.
   */
  ownDatabase?: boolean;
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/** A fresh, empty database: a temp SQLite file, or a PostgreSQL schema of its own. */
export async function createTestDatabase(dialect: "sqlite" | "postgres", options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const dir = tempDir();
  if (dialect === "sqlite") {
    return {
      dataDir: dir.path,
      databaseUrl: null,
      openStore: async () => {
        const store = await Store.open({ dataDir: dir.path, feedPollMs: 50 });
        await store.migrate();
        return store;
      },
      cleanup: async () => dir.cleanup(),
    };
  }
  const schema = `t_${randomBytes(6).toString("hex")}`;
  let pgUrl = PG_URL;
  if (options.ownDatabase) {
    await onServer(PG_URL, (c) => c.query(`create database ${schema}`));
    pgUrl = withDatabase(PG_URL, schema);
  }
  await onServer(pgUrl, (c) => c.query(`create schema ${schema}`));
  return {
    dataDir: dir.path,
    // search_path in the URL, so child processes (the CLI) given MOAT_DATABASE_URL land in the same schema.
    databaseUrl: `${pgUrl}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    pgSchema: schema,
    pgUrl,
    openStore: async () => {
      const store = await Store.open({ dataDir: dir.path, databaseUrl: pgUrl, pgSchema: schema, feedPollMs: 50 });
      await store.migrate();
      return store;
    },
    cleanup: async () => {
      if (options.ownDatabase) await onServer(PG_URL, (c) => c.query(`drop database if exists ${schema} with (force)`));
      else await onServer(pgUrl, (c) => c.query(`drop schema if exists ${schema} cascade`));
      dir.cleanup();
    },
  };
}

async function onServer(url: string, body: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await body(client);
  } finally {
    await client.end();
  }
}

export const DIALECTS = ["sqlite", "postgres"] as const;

/** Runs `body` once per dialect, like Kysely's own suites. PostgreSQL is required under CI=true. */
export function forEachDialect(title: string, body: (dialect: "sqlite" | "postgres") => void): void {
  for (const dialect of DIALECTS) {
    describe.skipIf(dialect === "postgres" && !pgOk)(`${title} [${dialect}]`, () => body(dialect));
  }
}

export { IN_CI };
