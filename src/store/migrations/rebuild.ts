import { sql, type Kysely } from "kysely";
import type { Dialect } from "../dialect.js";

export interface ForeignKey {
  /** Constraint name, `<table>_<column>_fk`. */
  name: string;
  column: string;
  references: { table: string; column: string };
  onDelete: "cascade" | "restrict" | "set null";
}

/**
 * Adds foreign keys to an existing table. PostgreSQL adds (and checks) each constraint in place.
 * SQLite cannot add a constraint to a table, so the table is rebuilt the documented way: a copy
 * created from the table's own definition plus the constraints, the rows copied over, the old table
 * dropped, the copy renamed and the table's indexes recreated. The migration runner has turned
 * `foreign_keys` off around the transaction and checks the whole database before it commits.
 */
export async function addForeignKeys(db: Kysely<any>, dialect: Dialect, table: string, keys: readonly ForeignKey[]): Promise<void> {
  const clauses = keys.map((k) => `constraint "${k.name}" foreign key ("${k.column}") references "${k.references.table}" ("${k.references.column}") on delete ${k.onDelete}`);
  if (dialect === "postgres") {
    for (const clause of clauses) await sql.raw(`alter table "${table}" add ${clause}`).execute(db);
    return;
  }
  const { rows } = await sql<{ type: string; name: string; sql: string | null }>`select type, name, sql from sqlite_master where tbl_name = ${table}`.execute(db);
  const definition = rows.find((r) => r.type === "table")?.sql;
  if (!definition) throw new Error(`no table ${table} to add foreign keys to`);
  const rebuilt = `${table}__rebuild`;
  const head = /^create table\s+(?:"[^"]+"|\w+)\s*\(/i;
  if (!head.test(definition) || !definition.trimEnd().endsWith(")")) throw new Error(`unexpected definition of ${table}: ${definition}`);
  // A rebuild would silently lose these: a trigger goes with the dropped table, an AUTOINCREMENT sequence restarts from the highest row left.
  if (rows.some((r) => r.type === "trigger") || /autoincrement/i.test(definition)) throw new Error(`${table} has triggers or AUTOINCREMENT; rebuild it by hand`);
  const createCopy = `${definition.replace(head, `create table "${rebuilt}" (`).trimEnd().slice(0, -1)}, ${clauses.join(", ")})`;
  // Indexes the table's own constraints create (sqlite_autoindex_…) have no sql and come back with it.
  const indexes = rows.filter((r) => r.type === "index" && r.sql !== null).map((r) => r.sql!);
  await sql.raw(createCopy).execute(db);
  await sql.raw(`insert into "${rebuilt}" select * from "${table}"`).execute(db);
  await sql.raw(`drop table "${table}"`).execute(db);
  await sql.raw(`alter table "${rebuilt}" rename to "${table}"`).execute(db);
  for (const index of indexes) await sql.raw(index).execute(db);
}
