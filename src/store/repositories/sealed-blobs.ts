import { sql, type Kysely } from "kysely";
import type { SealedBlob, SealedBlobStore } from "../../keys/index.js";
import type { Dialect } from "../dialect.js";
import type { Database } from "../schema.js";

/**
 * Every envelope in the database, for KEK rotation and `moat keys status`. Envelopes are found by
 * their magic ("MEV") in every binary column, and by its base64 form ("TUVW") in every text column,
 * so a secret column added by any domain is covered without registering it. Rows are addressed by
 * SQLite's rowid or PostgreSQL's ctid, and every write is a compare-and-swap on the old value.
 */
interface Column {
  table: string;
  column: string;
  encoding: "binary" | "base64";
}

const MAGIC = Buffer.from("MEV");
const MAGIC_BASE64 = "TUVW";

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;

export class KyselySealedBlobStore implements SealedBlobStore {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async *scan(options: { excludePrefix?: Buffer; batchSize: number }): AsyncIterable<SealedBlob[]> {
    for (const column of await this.columns()) {
      let after: string | number | null = null;
      for (;;) {
        const rows = await this.page(column, after, options);
        if (rows.length === 0) break;
        after = rows.at(-1)!.rid;
        const batch: SealedBlob[] = [];
        for (const row of rows) {
          const blob = column.encoding === "binary" ? Buffer.from(row.value as Uint8Array) : Buffer.from(String(row.value), "base64");
          if (options.excludePrefix && blob.subarray(0, options.excludePrefix.length).equals(options.excludePrefix)) continue;
          batch.push({ ref: JSON.stringify([column.table, column.column, column.encoding, row.rid]), location: `${column.table}.${column.column}`, blob });
        }
        if (batch.length > 0) yield batch;
        if (rows.length < options.batchSize) break;
      }
    }
  }

  async replace(updates: ReadonlyArray<{ blob: SealedBlob; next: Buffer }>): Promise<number> {
    if (updates.length === 0) return 0;
    if (this.dialect === "postgres") return this.replacePostgres(updates);
    return this.db.transaction().execute(async (trx) => {
      let written = 0;
      for (const { blob, next } of updates) {
        const [table, column, encoding, rid] = JSON.parse(blob.ref) as [string, string, Column["encoding"], string | number];
        const oldValue = encoding === "binary" ? blob.blob : blob.blob.toString("base64");
        const newValue = encoding === "binary" ? next : next.toString("base64");
        const where = this.dialect === "sqlite" ? sql`rowid = ${rid}` : sql`ctid = ${rid}::tid`;
        const result = await sql`update ${sql.raw(quote(table))} set ${sql.raw(quote(column))} = ${newValue} where ${where} and ${sql.raw(quote(column))} = ${oldValue}`.execute(trx);
        written += Number(result.numAffectedRows ?? 0n);
      }
      return written;
    });
  }

  /** One statement per column and batch: PostgreSQL round trips dominate otherwise. */
  private async replacePostgres(updates: ReadonlyArray<{ blob: SealedBlob; next: Buffer }>): Promise<number> {
    const groups = new Map<string, Array<{ rid: string; oldValue: Buffer | string; newValue: Buffer | string }>>();
    for (const { blob, next } of updates) {
      const [table, column, encoding, rid] = JSON.parse(blob.ref) as [string, string, Column["encoding"], string];
      const key = JSON.stringify([table, column, encoding]);
      const list = groups.get(key) ?? [];
      list.push({ rid, oldValue: encoding === "binary" ? blob.blob : blob.blob.toString("base64"), newValue: encoding === "binary" ? next : next.toString("base64") });
      groups.set(key, list);
    }
    let written = 0;
    for (const [key, rows] of groups) {
      const [table, column, encoding] = JSON.parse(key) as [string, string, Column["encoding"]];
      const type = sql.raw(encoding === "binary" ? "bytea" : "text");
      const values = sql.join(rows.map((row) => sql`(${row.rid}::tid, ${row.oldValue}::${type}, ${row.newValue}::${type})`));
      const col = sql.raw(quote(column));
      const result = await sql`update ${sql.raw(quote(table))} as t set ${col} = v.next from (values ${values}) as v(rid, old, next) where t.ctid = v.rid and t.${col} = v.old`.execute(this.db);
      written += Number(result.numAffectedRows ?? 0n);
    }
    return written;
  }

  private async page(column: Column, after: string | number | null, options: { excludePrefix?: Buffer; batchSize: number }): Promise<Array<{ rid: string | number; value: unknown }>> {
    const col = sql.raw(quote(column.column));
    const table = sql.raw(quote(column.table));
    const match =
      column.encoding === "binary"
        ? options.excludePrefix
          ? sql`substr(${col}, 1, 3) = ${MAGIC} and substr(${col}, 1, ${options.excludePrefix.length}) <> ${options.excludePrefix}`
          : sql`substr(${col}, 1, 3) = ${MAGIC}`
        : sql`${col} like ${MAGIC_BASE64 + "%"}`;
    const rid = this.dialect === "sqlite" ? sql.raw("rowid") : sql.raw("ctid");
    const keyset = after === null ? sql`1 = 1` : this.dialect === "sqlite" ? sql`rowid > ${after}` : sql`ctid > ${after}::tid`;
    const ridOut = this.dialect === "sqlite" ? sql`rowid` : sql`ctid::text`;
    const result = await sql<{ rid: string | number; value: unknown }>`select ${ridOut} as rid, ${col} as value from ${table} where ${match} and ${keyset} order by ${rid} limit ${options.batchSize}`.execute(this.db);
    return result.rows;
  }

  private async columns(): Promise<Column[]> {
    if (this.dialect === "sqlite") {
      const tables = await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and sql not like '%WITHOUT ROWID%'`.execute(this.db);
      const columns: Column[] = [];
      for (const { name } of tables.rows) {
        const info = await sql<{ name: string; type: string }>`select name, type from pragma_table_info(${name})`.execute(this.db);
        for (const c of info.rows) {
          const type = c.type.toLowerCase();
          if (type === "blob") columns.push({ table: name, column: c.name, encoding: "binary" });
          else if (type === "text" || type.startsWith("varchar")) columns.push({ table: name, column: c.name, encoding: "base64" });
        }
      }
      return columns;
    }
    const info = await sql<{ table_name: string; column_name: string; data_type: string }>`
      select c.table_name, c.column_name, c.data_type from information_schema.columns c
      join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
      where c.table_schema = current_schema() and t.table_type = 'BASE TABLE' and c.data_type in ('bytea', 'text', 'character varying')
      order by c.table_name, c.ordinal_position`.execute(this.db);
    return info.rows.map((c) => ({ table: c.table_name, column: c.column_name, encoding: c.data_type === "bytea" ? "binary" : "base64" }));
  }
}
