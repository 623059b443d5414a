/**
 * `npm run fuzz`: every target in test/fuzz/targets.ts for MOAT_FUZZ_RUNS cases (default 100,000),
 * one line per target with the cases run, failures and rate; exits 1 on any failure. MOAT_FUZZ_TARGETS
 * (comma-separated names) picks targets, MOAT_FUZZ_SEED replays a run, MOAT_FUZZ_BOUND_MS is the
 * per-case time bound (default 2,000 ms).
 *
 * A synchronous parser caught in a loop cannot be interrupted from its own thread, so a watchdog
 * thread watches a shared case counter: a case still running after ten times the bound is reported as
 * a hang (target and input, written synchronously to stderr) and the process is killed (non-zero exit:
 * the stuck thread cannot be unwound; all earlier output was written synchronously).
 */
import { writeSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { runTarget, show, TARGETS, type CaseWatch } from "./targets.js";

const env = process.env;
const runs = Number(env.MOAT_FUZZ_RUNS ?? 100_000);
const seed = env.MOAT_FUZZ_SEED === undefined ? Date.now() % 2 ** 31 : Number(env.MOAT_FUZZ_SEED);
const bound = Number(env.MOAT_FUZZ_BOUND_MS ?? 2000);
const picked = env.MOAT_FUZZ_TARGETS?.split(",").map((s) => s.trim());
const targets = picked ? TARGETS.filter((t) => picked.includes(t.name)) : TARGETS;

/** [case counter, 1 while a case runs]; the current case's description sits in `label` as UTF-8. */
const state = new Int32Array(new SharedArrayBuffer(8));
const label = new Uint8Array(new SharedArrayBuffer(4096));
const WATCHDOG = `
const { workerData } = require("node:worker_threads");
const { writeSync } = require("node:fs");
const { state, label, limitMs } = workerData;
let seen = -1, since = Date.now();
setInterval(() => {
  const count = Atomics.load(state, 0);
  if (count !== seen || Atomics.load(state, 1) === 0) { seen = count; since = Date.now(); return; }
  if (Date.now() - since < limitMs) return;
  const end = label.indexOf(0);
  writeSync(2, "fuzz: HANG: a case has run for over " + limitMs + " ms: " + Buffer.from(label.subarray(0, end < 0 ? label.length : end)).toString() + "\\n");
  // process.exit in a worker ends only the worker, and the main thread is stuck: end the process.
  process.kill(process.pid, "SIGKILL");
}, 250);
`;

function watchFor(targetName: string): CaseWatch {
  return {
    enter(input) {
      const text = Buffer.from(`${targetName} <- ${show(input)}`).subarray(0, label.length - 1);
      label.fill(0);
      label.set(text);
      Atomics.add(state, 0, 1);
      Atomics.store(state, 1, 1);
    },
    leave() {
      Atomics.store(state, 1, 0);
    },
  };
}

if (!Number.isInteger(runs) || runs < 1 || !(bound > 0) || targets.length === 0) {
  process.stderr.write(`fuzz: MOAT_FUZZ_RUNS must be a positive integer, MOAT_FUZZ_BOUND_MS positive, and MOAT_FUZZ_TARGETS name known targets (${TARGETS.map((t) => t.name).join(", ")})\n`);
  process.exitCode = 2;
} else {
  const watchdog = new Worker(WATCHDOG, { eval: true, workerData: { state, label, limitMs: bound * 10 } });
  writeSync(1, `fuzz: ${runs} cases per target, seed ${seed}, bound ${bound} ms per case\n`);
  const started = performance.now();
  let failed = 0;
  for (const target of targets) {
    const report = await runTarget(target, runs, { seed, timeBoundMs: bound, watch: watchFor(target.name) });
    failed += report.failures;
    const rate = Math.round(report.cases / (report.ms / 1000));
    writeSync(1, `${target.name.padEnd(20)} cases ${String(report.cases).padStart(8)}  failures ${report.failures}  ${rate} cases/s  ${(report.ms / 1000).toFixed(1)} s\n`);
    for (const example of report.examples) writeSync(1, `  ${example}\n`);
  }
  writeSync(1, `fuzz: ${failed === 0 ? "no failures" : `${failed} failures`} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  await watchdog.terminate();
  process.exitCode = failed === 0 ? 0 : 1;
}
