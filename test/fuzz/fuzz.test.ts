/**
 * The short fuzz run of `npm test`: each target of test/fuzz/targets.ts (its regressions, then a few
 * hundred generated cases) must return a result or throw a documented MoatError, within the time bound.
 * `npm run fuzz` runs the same targets for 100,000 cases each.
 */
import { describe, expect, it } from "vitest";
import { runTarget, TARGETS } from "./targets.js";

const RUNS = Number(process.env.MOAT_FUZZ_TEST_RUNS ?? 300);

describe("fuzz targets (short run)", () => {
  for (const target of TARGETS) {
    it(`${target.name}: ${target.entry}`, async () => {
      const report = await runTarget(target, RUNS, { timeBoundMs: 5000 });
      expect(report.examples).toEqual([]);
      expect(report.cases).toBeGreaterThanOrEqual(RUNS);
    }, 120_000);
  }
});
