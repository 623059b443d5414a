import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isMoatError } from "../errors.js";
import { DURATION_UNITS_MS, MAX_DURATION_MS, parseDuration } from "./duration.js";

describe("parseDuration", () => {
  it("returns milliseconds for every unit", () => {
    expect(parseDuration("90s")).toBe(90_000);
    expect(parseDuration("15m")).toBe(900_000);
    expect(parseDuration("12h")).toBe(43_200_000);
    expect(parseDuration(" 30d ")).toBe(2_592_000_000);
    expect(parseDuration("2w")).toBe(1_209_600_000);
    expect(parseDuration("3650d")).toBe(MAX_DURATION_MS);
  });

  it("refuses what is not one whole number and one unit, zero, and more than ten years, naming the input", () => {
    for (const bad of ["", "10", "s", "1.5h", "-1h", "+1h", "1 h", "1H", "1y", "1ms", "0s", "3651d", "1h30m", "9999999999999s"]) {
      let thrown: unknown;
      try {
        parseDuration(bad, "--ttl");
      } catch (error) {
        thrown = error;
      }
      expect(isMoatError(thrown, "DURATION_INVALID"), bad).toBe(true);
      expect((thrown as Error).message).toContain("--ttl");
    }
  });

  it("is the number times its unit for any accepted input", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), fc.constantFrom(...(Object.keys(DURATION_UNITS_MS) as (keyof typeof DURATION_UNITS_MS)[])), (n, unit) => {
        const ms = n * DURATION_UNITS_MS[unit];
        if (ms > MAX_DURATION_MS) expect(() => parseDuration(`${n}${unit}`)).toThrow(expect.objectContaining({ code: "DURATION_INVALID" }));
        else expect(parseDuration(`${n}${unit}`)).toBe(ms);
      }),
    );
  });
});
