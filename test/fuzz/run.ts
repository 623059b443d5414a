/**
 * `npm run fuzz`: every target in test/fuzz/targets.ts for MOAT_FUZZ_RUNS cases (default 100,000),
 * one line per target with the cases run, failures and rate; exits 1 on any failure. MOAT_FUZZ_TARGETS
 * (comma-separated names) picks targets, MOAT_FUZZ_SEED replays a run, MOAT_FUZZ_BOUND_MS is the
 * per-case time bound (default 2,000 ms).
 */
import { runTarget, TARGETS } from "./targets.js";

const env = process.env;
const runs = Number(env.MOAT_FUZZ_RUNS ?? 100_000);
const seed = env.MOAT_FUZZ_SEED === undefined ? Date.now() % 2 ** 31 : Number(env.MOAT_FUZZ_SEED);
const bound = Number(env.MOAT_FUZZ_BOUND_MS ?? 2000);
const picked = env.MOAT_FUZZ_TARGETS?.split(",").map((s) => s.trim());
const targets = picked ? TARGETS.filter((t) => picked.includes(t.name)) : TARGETS;
if (!Number.isInteger(runs) || runs < 1 || targets.length === 0) {
  process.stderr.write(`fuzz: MOAT_FUZZ_RUNS must be a positive integer and MOAT_FUZZ_TARGETS name known targets (${TARGETS.map((t) => t.name).join(", ")})\n`);
  process.exitCode = 2;
} else {
  process.stdout.write(`fuzz: ${runs} cases per target, seed ${seed}, bound ${bound} ms per case\n`);
  const started = performance.now();
  let failed = 0;
  for (const target of targets) {
    const report = await runTarget(target, runs, { seed, timeBoundMs: bound });
    failed += report.failures;
    const rate = Math.round(report.cases / (report.ms / 1000));
    process.stdout.write(`${target.name.padEnd(20)} cases ${String(report.cases).padStart(8)}  failures ${report.failures}  ${rate} cases/s  ${(report.ms / 1000).toFixed(1)} s\n`);
    for (const example of report.examples) process.stdout.write(`  ${example}\n`);
  }
  process.stdout.write(`fuzz: ${failed === 0 ? "no failures" : `${failed} failures`} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  process.exitCode = failed === 0 ? 0 : 1;
}
