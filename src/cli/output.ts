/** Output helpers: aligned tables for people, JSON for scripts. Data goes to stdout, progress to stderr. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + "\n");
}

export interface Column<T> {
  header: string;
  value: (row: T) => unknown;
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return "-";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value).replace(/[\u0000-\u001f\u007f]/g, "?");
}

export function printTable<T>(rows: readonly T[], columns: Column<T>[]): void {
  const cells = rows.map((row) => columns.map((c) => cell(c.value(row))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]) => values.map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i]!))).join("  ");
  process.stdout.write(line(columns.map((c) => c.header.toUpperCase())) + "\n");
  for (const r of cells) process.stdout.write(line(r) + "\n");
  if (rows.length === 0) process.stdout.write("(none)\n");
}

/** Key/value view of one record. */
export function printRecord(record: Record<string, unknown>): void {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  for (const [key, value] of Object.entries(record)) process.stdout.write(`${key.padEnd(width)}  ${cell(value)}\n`);
}

/** A progress line on stderr (only when stderr is a terminal or MOAT_PROGRESS=1). */
export function progress(message: string): void {
  process.stderr.write(message + "\n");
}
