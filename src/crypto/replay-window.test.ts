import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ReplayWindow } from "./replay-window.js";
import { isMoatError } from "../errors.js";

describe("ReplayWindow (RFC 4303 §3.4.3 semantics, RFC 6479 ring bitmap)", () => {
  it("accepts fresh and out-of-order numbers once, refuses duplicates and numbers below the window", () => {
    const window = new ReplayWindow(64);
    window.accept(0);
    window.accept(5);
    window.accept(3);
    expect(window.check(3)).toBe("duplicate");
    expect(window.check(4)).toBe("fresh");
    window.accept(200);
    // Window of 64 below the highest (200): 137..200 are inside, 136 is not.
    expect(window.check(136)).toBe("too-old");
    expect(window.check(137)).toBe("fresh");
    expect(window.check(5)).toBe("too-old");
    try {
      window.accept(200);
      expect.unreachable();
    } catch (error) {
      expect(isMoatError(error, "COSE_REPLAYED")).toBe(true);
      expect((error as { detail: { reason: string } }).detail.reason).toBe("duplicate");
    }
  });

  it("matches a reference model (a set of seen numbers plus the window rule) on random sequences", () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 400 }), { maxLength: 300 }), fc.constantFrom(32, 64, 128), (sequence, size) => {
        const window = new ReplayWindow(size);
        const seen = new Set<number>();
        let highest = -1;
        for (const seq of sequence) {
          const expected = seen.has(seq) ? "duplicate" : highest - seq >= size ? "too-old" : "fresh";
          // Numbers below the window are too old even if they were seen.
          const verdict = window.check(seq);
          const model = highest - seq >= size ? "too-old" : expected;
          if (verdict !== model) return false;
          if (verdict === "fresh") {
            window.accept(seq);
            seen.add(seq);
            highest = Math.max(highest, seq);
          }
        }
        return true;
      }),
      { numRuns: 200 },
    );
  });

  it("handles jumps larger than the whole ring and sequence numbers near 2^53", () => {
    const window = new ReplayWindow(32);
    window.accept(1);
    window.accept(1_000_000);
    expect(window.check(1_000_000 - 31)).toBe("fresh");
    const big = Number.MAX_SAFE_INTEGER - 1;
    window.accept(big);
    expect(window.check(big)).toBe("duplicate");
    expect(window.check(big - 5)).toBe("fresh");
    expect(() => window.check(-1)).toThrow(/non-negative/);
    expect(() => new ReplayWindow(33)).toThrow(RangeError);
  });
});
