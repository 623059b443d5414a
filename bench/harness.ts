/** Types shared by every benchmark under bench/ (run by bench/run.ts). */
export interface BenchContext {
  /** Smaller sizes for a quick run (`npm run bench -- --quick`). */
  quick: boolean;
  /** Progress lines go to stderr so the table on stdout stays clean. */
  log(message: string): void;
  /** A scratch directory removed after the run. */
  tmpDir: string;
}

export interface BenchRow {
  /** What is measured, e.g. "issue P-256 certificate from CSR (stored)". */
  measure: string;
  /** Moat's figure. */
  moat: number;
  /** The reference tool's figure measured in the same run, or null when there is none. */
  reference: number | null;
  /** The reference tool, e.g. "openssl speed ecdsap256 (sign/s)". */
  referenceName?: string;
  unit: string;
  /** true for rates (more is better), false for times and sizes (less is better). */
  higherIsBetter: boolean;
  /** Goal, e.g. ">= 0.25x", shown beside the ratio. */
  goal?: string;
  note?: string;
}

export type Bench = (ctx: BenchContext) => Promise<BenchRow[]>;

/** Ratio as "how many times as good as the reference" (>1 means Moat is better). */
export function ratioOf(row: BenchRow): number | null {
  if (row.reference === null || row.reference === 0 || row.moat === 0) return null;
  return row.higherIsBetter ? row.moat / row.reference : row.reference / row.moat;
}
