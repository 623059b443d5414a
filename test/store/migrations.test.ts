import { spawn } from "node:child_process";
import { join } from "node:path";
import { Migrator, sql, type Kysely, type Migration } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isMoatError } from "../../src/errors.js";
import { SQLITE_FILE, Store, type Dialect } from "../../src/store/index.js";
import { BASELINE, MIGRATIONS, type NamedMigration } from "../../src/store/migrations/index.js";
import { addForeignKeys } from "../../src/store/migrations/rebuild.js";
import { migrateToLatest } from "../../src/store/migrator.js";
import { REPO_ROOT, runCli } from "../helpers/cli.js";
import { createTestDatabase, forEachDialect, type TestDatabase } from "../helpers/dialects.js";

/**
 * The schema of the installations that exist today, built the way they were built: Kysely's Migrator
 * with unordered application, fed the baseline migrations in the order their code was written
 * (0050 before 0010/0020/0030, 0041 last), so the records are out of name order as in the field.
 */
const HISTORY: string[][] = [
  ["0001_foundation", "0002_ca_registry", "0050_firmware"],
  ["0020_policy", "0070_scanner"],
  ["0030_broker"],
  ["0010_pki"],
  ["0041_ca_key_location"],
];

async function buildTodaysSchema(db: Kysely<any>, dialect: Dialect): Promise<void> {
  const schema = dialect === "postgres" ? (await sql<{ s: string }>`select current_schema() as s`.execute(db)).rows[0]!.s : undefined;
  const known: Record<string, Migration> = {};
  for (const step of HISTORY) {
    for (const name of step) {
      const migration = MIGRATIONS.find((m) => m.name === name)!.migration;
      known[name] = { up: (d) => migration.up(d, dialect) };
    }
    const migrator = new Migrator({ db, provider: { getMigrations: async () => ({ ...known }) }, allowUnorderedMigrations: true, ...(schema ? { migrationTableSchema: schema } : {}) });
    const { error } = await migrator.migrateToLatest();
    if (error) throw error;
    // Later runs must record later timestamps, as they did over the weeks they were apart.
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Child process: takes SQLite's write lock on the file, says so, holds it for a while, commits. */
const HOLD_WRITE_LOCK = `
const db = new (require("better-sqlite3"))(process.argv[1]);
db.exec("begin immediate");
process.stdout.write("locked\\n");
setTimeout(() => { db.exec("commit"); db.close(); }, 1500);
`;

/** What an installation of today's schema lacks: everything after the baseline. */
const AFTER_BASELINE = MIGRATIONS.slice(BASELINE.length).map((m) => m.name);

const NOW = "2026-11-30T12:00:00.000Z";
const LATER = "2027-11-30T12:00:00.000Z";

/** A little of everything today's schema holds, rows that reference each other included. */
async function seedRows(db: Kysely<any>): Promise<void> {
  const blob = (text: string) => Buffer.from(text);
  await db.insertInto("meta").values({ key: "trust_domain", value: "test.moat" }).execute();
  const device = (id: string) => ({ id, name: id, device_group: "lab", role: "device", status: "active", attributes: "{}", created_at: NOW, updated_at: NOW, last_seen_at: null, last_seen_address: "10.0.0.7" });
  await db.insertInto("devices").values([device("dev-1"), device("dev-2")]).execute();
  await db.insertInto("operator_tokens").values({ id: "tok1", name: "admin", role: "admin", secret_hash: "ab".repeat(32), created_at: NOW, created_by: "init", expires_at: null, revoked_at: null, last_used_at: null }).execute();
  await db.insertInto("change_feed").values({ kind: "device.status", subject: "dev-1", data: "{}", created_at: NOW }).execute();
  const event = (seq: number) => ({ seq, time: NOW, type: "device.created", severity: "info", actor: "cli", subject: `dev-${seq}`, data: "{}", prev_hash: String(seq - 1).repeat(64), hash: String(seq).repeat(64) });
  await db.insertInto("audit_events").values([event(1), event(2)]).execute();
  await db.updateTable("audit_head").set({ seq: 2, hash: "2".repeat(64) }).where("id", "=", 1).execute();
  await db.insertInto("ca_certificates").values({ serial: "0a", role: "issuing", key_type: "ec-p256", subject: "CN=issuing", certificate_pem: "pem", sealed_key: blob("sealed"), not_after: LATER, active: 1, created_at: NOW, key_location: null }).execute();
  const cert = (serial: string, supersededBy: string | null) => ({
    serial, device_id: "dev-1", issuer_serial: "0a", subject: "CN=dev-1", fingerprint: `fp-${serial}`, key_kind: "ec-p256", not_before: NOW, not_after: LATER,
    status: "active", revoked_at: null, revocation_reason: null, superseded_by: supersededBy, revoke_after: null, expiry_notified_at: null, created_at: NOW, certificate_der: blob(serial),
  });
  await db.insertInto("certificates").values([cert("c2", null), cert("c1", "c2")]).execute();
  await db.insertInto("crls").values({ ca_serial: "0a", crl_number: 3, this_update: NOW, next_update: LATER, crl_der: blob("crl") }).execute();
  await db.insertInto("enrollment_tokens").values({ id: "enr1", device_id: "dev-2", secret_hash: "cd".repeat(32), created_at: NOW, created_by: "cli", expires_at: LATER, used_at: null }).execute();
  await db.insertInto("manufacturer_cas").values({ fingerprint: "mfp", subject: "CN=maker", certificate_pem: "pem", not_after: LATER, created_at: NOW }).execute();
  await db.insertInto("roles").values({ name: "sensor", description: "sensors", rules: "[]", builtin: 0, created_at: NOW, updated_at: NOW }).execute();
  await db.insertInto("role_assignments").values({ role: "sensor", kind: "group", target: "lab", created_at: NOW, created_by: "cli" }).execute();
  await db.insertInto("device_keys").values({ device_id: "dev-2", key_id: "k1", spki_pem: "spki", created_at: NOW, created_by: "cli" }).execute();
  await db.insertInto("device_secrets").values({ device_id: "dev-2", secret_id: "s1", sealed: blob("secret"), created_at: NOW, not_after: null }).execute();
  const fwKey = (name: string, purpose: string, issuer: string | null) => ({
    name, purpose, alg: "ed25519", key_id: `kid-${name}`, public_key: blob(name), sealed_private_key: blob("sealed"), certificate: issuer ? "{}" : null, issuer,
    not_before: null, not_after: null, revoked_at: null, revocation_reason: null, created_at: NOW,
  });
  await db.insertInto("firmware_keys").values([fwKey("root", "root", null), fwKey("signing-1", "signing", "root")]).execute();
  await db.insertInto("firmware_revocation_lists").values({ version: 1, document: "{}", created_at: NOW }).execute();
  await db.insertInto("ota_campaigns").values({ id: "camp1", device_group: "lab", status: "running", data: "{}", created_at: NOW, updated_at: NOW }).execute();
  await db.insertInto("scan_runs").values({ id: "run1", started_at: NOW, finished_at: NOW, status: "done", targets: "[]", port_spec: "1-1024", actor: "cli", critical_count: 0, high_count: 1, medium_count: 0, low_count: 0, info_count: 0, open_ports: 1, result: "{}" }).execute();
  await db.insertInto("scan_findings").values({ run_id: "run1", ordinal: 0, rule_id: "telnet", severity: "high", title: "telnet", evidence: "23/tcp", remediation: "off", owasp: "[]", etsi: "[]", address: "10.0.0.7", port: 23, transport: "tcp", device_id: "dev-2" }).execute();
}

async function tableNames(db: Kysely<any>, dialect: Dialect): Promise<string[]> {
  const { rows } =
    dialect === "sqlite"
      ? await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name`.execute(db)
      : await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema() order by table_name`.execute(db);
  return rows.map((r) => r.name);
}

/** Every row of every table, in a stable order, Buffers as hex: what must survive an upgrade. */
async function allRows(db: Kysely<any>, dialect: Dialect): Promise<Record<string, unknown[]>> {
  const out: Record<string, unknown[]> = {};
  for (const table of await tableNames(db, dialect)) {
    if (table.startsWith("kysely_")) continue;
    const rows = (await sql<Record<string, unknown>>`select * from ${sql.table(table)}`.execute(db)).rows.map((row) =>
      Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString("hex") : v])),
    );
    out[table] = rows.map((r) => JSON.stringify(r)).sort();
  }
  return out;
}

/** `rows` (from allRows) without the columns `reference` lacks, where they are null; a non-null one stays and fails the comparison. */
function withoutAddedNulls(rows: unknown[], reference: unknown[]): unknown[] {
  const known = new Set(reference.flatMap((row) => Object.keys(JSON.parse(String(row)) as object)));
  if (known.size === 0) return rows;
  return rows
    .map((row) => JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(String(row)) as object).filter(([k, v]) => known.has(k) || v !== null))))
    .sort();
}

/**
 * The schema as the database's own catalog describes it: tables, columns (order, type, nullability,
 * default, primary key), indexes and constraints (foreign keys with their ON DELETE).
 */
async function describeSchema(db: Kysely<any>, dialect: Dialect): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const table of await tableNames(db, dialect)) {
    if (dialect === "sqlite") {
      const q = (pragma: string) => sql.raw(pragma).execute(db).then((r) => r.rows as Record<string, unknown>[]);
      const indexes = [];
      for (const index of await q(`pragma index_list("${table}")`)) {
        const columns = (await q(`pragma index_info("${String(index.name)}")`)).map((c) => c.name);
        indexes.push({ name: index.name, unique: index.unique, origin: index.origin, partial: index.partial, columns });
      }
      out[table] = {
        columns: await q(`pragma table_info("${table}")`),
        indexes: indexes.sort((a, b) => String(a.name).localeCompare(String(b.name))),
        foreignKeys: (await q(`pragma foreign_key_list("${table}")`)).map(({ id: _id, seq: _seq, ...fk }) => fk).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      };
    } else {
      const columns = await sql`select column_name, data_type, is_nullable, column_default, is_identity, ordinal_position from information_schema.columns
        where table_schema = current_schema() and table_name = ${table} order by ordinal_position`.execute(db);
      const indexes = await sql`select indexname, regexp_replace(indexdef, ' ON [^ ]+\\.', ' ON ') as def from pg_indexes
        where schemaname = current_schema() and tablename = ${table} order by indexname`.execute(db);
      const constraints = await sql`select conname, contype, pg_get_constraintdef(oid) as def from pg_constraint
        where conrelid = ${sql.lit(`"${table}"`)}::regclass order by conname`.execute(db);
      out[table] = { columns: columns.rows, indexes: indexes.rows, constraints: constraints.rows };
    }
  }
  return out;
}

forEachDialect("migrations", (dialect) => {
  let database: TestDatabase;
  let store: Store;
  let db: Kysely<any>;

  beforeEach(async () => {
    database = await createTestDatabase(dialect, { ownDatabase: true });
    // Opened without migrating: each test builds the schema it starts from.
    store = await Store.open({ dataDir: database.dataDir, ...(database.pgSchema ? { databaseUrl: database.pgUrl!, pgSchema: database.pgSchema } : {}) });
    db = store.db;
  });
  afterEach(async () => {
    await store.close();
    await database.cleanup();
  });

  it("upgrades a database of today's schema, with its rows, to exactly what a fresh database gets", async () => {
    await buildTodaysSchema(db, dialect);
    await seedRows(db);
    const before = await allRows(db, dialect);
    // Kysely's in-order check would refuse these records; the runner accepts the baseline in any order.
    const strict = await new Migrator({ db, provider: { getMigrations: async () => Object.fromEntries(BASELINE.map((n) => [n, { up: async () => {} }])) } }).migrateToLatest();
    expect(String(strict.error)).toMatch(/corrupted migrations/);
    await expect(store.assertSchemaCurrent()).rejects.toSatisfy((e) => isMoatError(e, "SCHEMA_OUTDATED"));

    const report = await store.migrate();
    expect(report.applied).toEqual(AFTER_BASELINE);
    await store.assertSchemaCurrent();
    // Every row is kept; later migrations may add tables (and fill them from the rows, like the audit tree)
    // and nullable columns, which are null in the kept rows.
    const after = await allRows(db, dialect);
    expect(Object.fromEntries(Object.keys(before).map((t) => [t, withoutAddedNulls(after[t]!, before[t]!)]))).toEqual(before);

    const fresh = await createTestDatabase(dialect);
    const freshStore = await fresh.openStore();
    try {
      expect((await freshStore.schemaStatus()).applied).toEqual(MIGRATIONS.map((m) => m.name));
      expect(await describeSchema(db, dialect)).toEqual(await describeSchema(freshStore.db, dialect));
      expect(await tableNames(db, dialect)).toEqual(await tableNames(freshStore.db, dialect));
    } finally {
      await freshStore.close();
      await fresh.cleanup();
    }
  });

  it("enforces the foreign keys with the chosen ON DELETE after an upgrade", async () => {
    await buildTodaysSchema(db, dialect);
    await seedRows(db);
    await store.migrate();
    const fails = (p: Promise<unknown>) => expect(p).rejects.toThrow(/foreign key/i);
    await fails(db.insertInto("device_keys").values({ device_id: "nobody", key_id: "k", spki_pem: "x", created_at: NOW, created_by: "t" }).execute());
    // restrict: dev-1 holds certificates; the CA issued them; the role is still granted.
    await fails(db.deleteFrom("devices").where("id", "=", "dev-1").execute());
    await fails(db.deleteFrom("ca_certificates").where("serial", "=", "0a").execute());
    await fails(db.deleteFrom("roles").where("name", "=", "sensor").execute());
    await fails(db.deleteFrom("firmware_keys").where("name", "=", "root").execute());
    // cascade and set null: dev-2's credentials and enrollment token go with it, its scan finding stays.
    await db.deleteFrom("devices").where("id", "=", "dev-2").execute();
    expect(await db.selectFrom("device_keys").selectAll().execute()).toEqual([]);
    expect(await db.selectFrom("device_secrets").selectAll().execute()).toEqual([]);
    expect(await db.selectFrom("enrollment_tokens").selectAll().execute()).toEqual([]);
    expect((await db.selectFrom("scan_findings").select("device_id").execute()).map((r) => r.device_id)).toEqual([null]);
    // The policy service's order (assignments first, then the role) passes.
    await db.deleteFrom("role_assignments").where("role", "=", "sensor").execute();
    await db.deleteFrom("roles").where("name", "=", "sensor").execute();
  });

  it("refuses rows that reference missing rows with MIGRATION_FAILED and leaves the database as it was", async () => {
    await buildTodaysSchema(db, dialect);
    await seedRows(db);
    await db.insertInto("device_secrets").values({ device_id: "ghost", secret_id: "s", sealed: Buffer.from("x"), created_at: NOW, not_after: null }).execute();
    const schemaBefore = await describeSchema(db, dialect);
    const rowsBefore = await allRows(db, dialect);
    await expect(store.migrate()).rejects.toSatisfy((e) => isMoatError(e, "MIGRATION_FAILED") && /0071_foreign_keys/.test((e as Error).message));
    expect(await describeSchema(db, dialect)).toEqual(schemaBefore);
    expect(await allRows(db, dialect)).toEqual(rowsBefore);
    expect((await store.schemaStatus()).pending).toEqual(AFTER_BASELINE);
    // The orphan removed, the same upgrade goes through.
    await db.deleteFrom("device_secrets").where("device_id", "=", "ghost").execute();
    expect((await store.migrate()).applied).toEqual(AFTER_BASELINE);
  });

  it("lets several processes migrate one database at once: each migration runs once", async () => {
    await buildTodaysSchema(db, dialect);
    await seedRows(db);
    let reports: { applied: string[] }[];
    if (dialect === "sqlite") {
      // Separate processes: SQLite's lock waits block the thread, so two connections of one process cannot take turns.
      const runs = await Promise.all([1, 2].map(() => runCli(["migrate", "--json", "--data-dir", database.dataDir])));
      expect(runs.map((r) => [r.code, r.stderr])).toEqual([[0, ""], [0, ""]]);
      reports = runs.map((r) => JSON.parse(r.stdout) as { applied: string[] });
    } else {
      const others = await Promise.all([1, 2].map(() => Store.open({ dataDir: database.dataDir, databaseUrl: database.pgUrl!, pgSchema: database.pgSchema! })));
      try {
        reports = await Promise.all([store, ...others].map((s) => s.migrate()));
      } finally {
        await Promise.all(others.map((s) => s.close()));
      }
    }
    expect(reports.flatMap((r) => r.applied).sort()).toEqual(AFTER_BASELINE);
    expect(await store.schemaStatus()).toEqual({ applied: MIGRATIONS.map((m) => m.name), pending: [], unknown: [] });
  });

  // Only SQLite has a busy timeout to outlast; the test is not registered for PostgreSQL (never reported as skipped).
  const onSqlite = dialect === "sqlite" ? it : () => undefined;
  onSqlite("waits for another process's migration beyond SQLite's busy timeout", async () => {
    await buildTodaysSchema(db, dialect);
    // Another process holds the write lock (as a long migration would) for longer than this connection's busy wait.
    const holder = spawn(process.execPath, ["-e", HOLD_WRITE_LOCK, join(database.dataDir, SQLITE_FILE)], { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise((resolve) => holder.on("exit", resolve));
    await new Promise((resolve) => holder.stdout.once("data", resolve));
    await sql`pragma busy_timeout = 50`.execute(db);
    expect((await store.migrate()).applied).toEqual(AFTER_BASELINE);
    expect(await exited).toBe(0);
  });

  it("tells an outdated database from a newer one and refuses a history with a gap", async () => {
    const partial: NamedMigration[] = MIGRATIONS.slice(0, BASELINE.length);
    await migrateToLatest(db, dialect, partial);
    expect(await store.schemaStatus()).toEqual({ applied: BASELINE, pending: AFTER_BASELINE, unknown: [] });
    await expect(store.assertSchemaCurrent()).rejects.toSatisfy((e) => isMoatError(e, "SCHEMA_OUTDATED") && /run moat migrate/.test((e as Error).message));
    await store.migrate();

    await db.insertInto("kysely_migration").values({ name: "9999_from_a_newer_moat", timestamp: NOW }).execute();
    await expect(store.assertSchemaCurrent()).rejects.toSatisfy((e) => isMoatError(e, "SCHEMA_NEWER") && /9999_from_a_newer_moat/.test((e as Error).message));
    await expect(store.migrate()).rejects.toSatisfy((e) => isMoatError(e, "SCHEMA_NEWER"));
    await db.deleteFrom("kysely_migration").where("name", "=", "9999_from_a_newer_moat").execute();

    // A later migration recorded without an earlier one outside the baseline is not a history moat writes.
    const withGap: NamedMigration[] = [...MIGRATIONS, { name: "9998_next", migration: { up: async () => {} } }, { name: "9999_after", migration: { up: async () => {} } }];
    await db.insertInto("kysely_migration").values({ name: "9999_after", timestamp: NOW }).execute();
    await expect(migrateToLatest(db, dialect, withGap)).rejects.toSatisfy((e) => isMoatError(e, "MIGRATION_FAILED") && /9998_next/.test((e as Error).message));
  });
});

describe("SQLite table rebuild", () => {
  it("refuses tables a rebuild would damage (triggers, AUTOINCREMENT) instead of losing them", async () => {
    const database = await createTestDatabase("sqlite");
    const store = await Store.open({ dataDir: database.dataDir });
    const db = store.db as Kysely<any>;
    try {
      await sql`create table parent (id text primary key)`.execute(db);
      await sql`create table counted (seq integer primary key autoincrement, parent_id text)`.execute(db);
      await sql`create table watched (parent_id text)`.execute(db);
      await sql`create trigger watched_trigger after insert on watched begin select 1; end`.execute(db);
      const key = { name: "x_fk", column: "parent_id", references: { table: "parent", column: "id" }, onDelete: "cascade" } as const;
      await expect(addForeignKeys(db, "sqlite", "counted", [key])).rejects.toThrow(/AUTOINCREMENT/);
      await expect(addForeignKeys(db, "sqlite", "watched", [key])).rejects.toThrow(/triggers/);
      expect((await sql`pragma foreign_key_list("counted")`.execute(db)).rows).toEqual([]);
    } finally {
      await store.close();
      await database.cleanup();
    }
  });
});

describe("the migration sequence", () => {
  it("is one ordered list of unique numbered names, starting with the frozen baseline", () => {
    const names = MIGRATIONS.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    expect([...names].sort()).toEqual(names);
    for (const name of names) expect(name).toMatch(/^\d{4}_[a-z0-9_]+$/);
    expect(names.slice(0, BASELINE.length)).toEqual([...BASELINE]);
    // After the baseline, each migration takes the next number.
    const numbers = names.slice(BASELINE.length - 1).map((n) => Number(n.slice(0, 4)));
    numbers.forEach((n, i) => i > 0 && expect(n).toBe(numbers[i - 1]! + 1));
  });
});

describe("commands that do not migrate", () => {
  let database: TestDatabase;
  let store: Store;
  beforeEach(async () => {
    database = await createTestDatabase("sqlite");
    store = await Store.open({ dataDir: database.dataDir });
    await buildTodaysSchema(store.db, "sqlite");
    await seedRows(store.db);
  });
  afterEach(async () => {
    await store.close();
    await database.cleanup();
  });

  it("stop on an outdated or newer schema with a coded error and change nothing; moat migrate upgrades", async () => {
    const dataDir = ["--data-dir", database.dataDir];
    const schemaBefore = await describeSchema(store.db, "sqlite");
    const rowsBefore = await allRows(store.db, "sqlite");
    const listed = await runCli(["device", "list", "--json", ...dataDir]);
    expect(listed.code).toBe(1);
    expect(listed.stdout).toBe("");
    expect(listed.stderr).toMatch(/SCHEMA_OUTDATED.*0071_foreign_keys.*run moat migrate/);
    expect(await describeSchema(store.db, "sqlite")).toEqual(schemaBefore);
    expect(await allRows(store.db, "sqlite")).toEqual(rowsBefore);
    expect((await store.schemaStatus()).pending).toEqual(AFTER_BASELINE);

    const status = await runCli(["migrate", "--status", "--json", ...dataDir]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toEqual({ applied: BASELINE, pending: AFTER_BASELINE, unknown: [] });
    expect(await allRows(store.db, "sqlite")).toEqual(rowsBefore);

    const migrated = await runCli(["migrate", "--json", ...dataDir]);
    expect(migrated.code).toBe(0);
    expect(JSON.parse(migrated.stdout)).toEqual({ applied: AFTER_BASELINE });
    // Past the schema check now: this seeded database was never `moat init`-ed, which is the next thing said.
    const after = await runCli(["device", "list", "--json", ...dataDir]);
    expect(after.stderr).toMatch(/DATA_DIR_NOT_INITIALIZED/);

    await (store.db as Kysely<any>).insertInto("kysely_migration").values({ name: "9999_from_a_newer_moat", timestamp: NOW }).execute();
    const newer = await runCli(["device", "list", "--json", ...dataDir]);
    expect(newer.code).toBe(1);
    expect(newer.stderr).toMatch(/SCHEMA_NEWER.*9999_from_a_newer_moat/);
  });
});
