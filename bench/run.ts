/**
 * `npm run bench`: runs every bench/*.bench.ts (or those named with --only), prints one markdown table
 * (measure, Moat, reference, ratio, goal) on stdout and writes bench/results/latest.json.
 * Progress goes to stderr. `--quick` uses smaller sizes.
 */
import "reflect-metadata";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ratioOf, type Bench, type BenchRow } from "./harness.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes("--quick");
const only = args.flatMap((a, i) => (a === "--only" ? [args[i + 1]!] : []));

function format(n: number | null): string {
  if (n === null) return "-";
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString("en-US");
  if (Math.abs(n) >= 10) return n.toFixed(1);
  return n.toPrecision(3);
}

const files = readdirSync(here)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => only.length === 0 || only.includes(f.replace(/\.bench\.ts$/, "")))
  .sort();
const results: (BenchRow & { bench: string; ratio: number | null })[] = [];
const failures: string[] = [];
for (const file of files) {
  const name = file.replace(/\.bench\.ts$/, "");
  const tmpDir = mkdtempSync(join(tmpdir(), `moat-bench-${name}-`));
  const started = Date.now();
  process.stderr.write(`[bench] ${name} …\n`);
  try {
    const bench = (await import(pathToFileURL(join(here, file)).href)).default as Bench;
    const rows = await bench({ quick, tmpDir, log: (m) => process.stderr.write(`[bench:${name}] ${m}\n`) });
    for (const row of rows) results.push({ ...row, bench: name, ratio: ratioOf(row) });
    process.stderr.write(`[bench] ${name} done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  } catch (error) {
    failures.push(`${name}: ${(error as Error).stack ?? error}`);
    process.stderr.write(`[bench] ${name} FAILED: ${(error as Error).message}\n`);
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

const lines = [
  `Moat benchmarks — ${new Date().toISOString()} — ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), Node ${process.version}${quick ? " — QUICK sizes" : ""}`,
  "",
  "| measure | Moat | reference | unit | ratio (x as good as reference) | goal | note |",
  "|---|---:|---:|---|---:|---|---|",
  ...results.map(
    (r) =>
      `| ${r.measure} | ${format(r.moat)} | ${r.reference === null ? "-" : `${format(r.reference)} (${r.referenceName ?? "reference"})`} | ${r.unit} | ${r.ratio === null ? "-" : `${r.ratio.toFixed(2)}x`} | ${r.goal ?? ""} | ${r.note ?? ""} |`,
  ),
];
process.stdout.write(lines.join("\n") + "\n");
mkdirSync(join(here, "results"), { recursive: true });
// With --only, keep the other benchmarks' rows from the previous run instead of dropping them.
const latestPath = join(here, "results", "latest.json");
const ran = new Set(files.map((f) => f.replace(/\.bench\.ts$/, "")));
let kept: typeof results = [];
if (only.length > 0 && existsSync(latestPath)) {
  try {
    kept = (JSON.parse(readFileSync(latestPath, "utf8")) as { results: typeof results }).results.filter((r) => !ran.has(r.bench));
  } catch {
    kept = [];
  }
}
writeFileSync(latestPath, JSON.stringify({ date: new Date().toISOString(), quick, node: process.version, cores: cpus().length, results: [...kept, ...results], failures }, null, 2));
if (failures.length) {
  process.stderr.write(`\n${failures.length} benchmark(s) failed:\n${failures.join("\n")}\n`);
  process.exitCode = 1;
}
