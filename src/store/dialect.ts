import { sql, type ColumnDefinitionBuilder, type CreateTableBuilder, type RawBuilder } from "kysely";

export type Dialect = "sqlite" | "postgres";

/** Binary column type: `blob` in SQLite, `bytea` in PostgreSQL. Both drivers return Buffers. */
export function blobType(dialect: Dialect): RawBuilder<unknown> {
  return sql.raw(dialect === "sqlite" ? "blob" : "bytea");
}

/** Adds an auto-increment integer primary key named `column`. */
export function autoId<T extends string, C extends string>(
  table: CreateTableBuilder<T, C>,
  dialect: Dialect,
  column: string,
): CreateTableBuilder<T, C> {
  return dialect === "sqlite"
    ? (table.addColumn(column as any, "integer", (c: ColumnDefinitionBuilder) => c.primaryKey().autoIncrement()) as any)
    : (table.addColumn(column as any, "bigint", (c: ColumnDefinitionBuilder) => c.primaryKey().generatedAlwaysAsIdentity()) as any);
}

/** Timestamps are ISO-8601 UTC text on both dialects: they sort correctly and need no conversion. */
export function nowIso(): string {
  return new Date().toISOString();
}

/** True for errors that mean "another writer got there first; run the transaction again". */
export function isRetryableWriteConflict(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "SQLITE_BUSY" || code === "SQLITE_BUSY_SNAPSHOT" || code === "SQLITE_LOCKED" || code === "40001" || code === "40P01";
}

/** True when a unique constraint was violated. */
export function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "SQLITE_CONSTRAINT_PRIMARYKEY" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === "23505";
}
