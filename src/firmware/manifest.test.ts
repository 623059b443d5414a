import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isMoatError } from "../errors.js";
import { parseManifest } from "./manifest.js";

describe("manifest parser", () => {
  it("answers any input with a coded error, never a crash", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b))), (input) => {
        try {
          parseManifest(input);
        } catch (error) {
          expect(isMoatError(error)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
