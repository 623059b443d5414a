import { describe, expect, it } from "vitest";
import { MoatError } from "../errors.js";
import { LatencyRecorder, RunStats, errorCodeOf } from "./stats.js";

describe("latency percentiles (nearest rank)", () => {
  it("reports a sample that was really observed", () => {
    const r = new LatencyRecorder();
    expect(r.percentile(50)).toBeNull();
    for (const ms of [5, 1, 4, 2, 3, 100, 7, 6, 8, 9]) r.record(ms);
    expect(r.count).toBe(10);
    expect(r.percentile(50)).toBe(5);
    expect(r.percentile(90)).toBe(9);
    expect(r.percentile(99)).toBe(100);
    expect(r.percentile(100)).toBe(100);
    r.record(0.4);
    expect(r.percentile(1)).toBe(0);
  });

  it("ignores what is not a latency", () => {
    const r = new LatencyRecorder();
    for (const ms of [NaN, -1, Infinity]) r.record(ms);
    expect(r.count).toBe(0);
  });
});

describe("errors by code", () => {
  it("counts Moat codes, Node system codes, and everything else as INTERNAL", () => {
    const stats = new RunStats();
    stats.error(new MoatError("SIM_API_FAILED", "x"));
    stats.error(new MoatError("SIM_API_FAILED", "y"));
    stats.error(Object.assign(new Error("refused"), { code: "ECONNREFUSED" }));
    stats.error(new Error("plain"));
    stats.error({ code: "not a code!" });
    expect(stats.errorsByCode).toEqual({ SIM_API_FAILED: 2, ECONNREFUSED: 1, INTERNAL: 2 });
    expect(errorCodeOf(undefined)).toBe("INTERNAL");
  });
});
