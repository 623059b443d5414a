import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isMoatError } from "../errors.js";
import { canonicalize, parseCanonical } from "./canonical-json.js";
import { parseManifest } from "./manifest.js";

const value = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small" },
    fc.string(),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie("v"), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie("v"), { maxKeys: 4 }),
  ),
})).v;

describe("canonical JSON (RFC 8785 subset)", () => {
  it("round-trips, and is independent of member order", () => {
    fc.assert(
      fc.property(value, (v) => {
        const text = canonicalize(v);
        expect(canonicalize(parseCanonical(Buffer.from(text), "value"))).toBe(text);
        if (v && typeof v === "object" && !Array.isArray(v)) {
          const reversed = Object.fromEntries(Object.entries(v as Record<string, unknown>).reverse());
          expect(canonicalize(reversed)).toBe(text);
        }
      }),
    );
  });

  it("sorts members by UTF-16 code units and refuses what has no single encoding", () => {
    expect(canonicalize({ b: 1, a: [true, null, "\u00e9"], "\u20ac": 0, "\ud83d\ude00": 1 })).toBe('{"a":[true,null,"é"],"b":1,"€":0,"😀":1}');
    for (const bad of [1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN, "\ud800", new Date(0), () => 1])
      expect(() => canonicalize({ x: bad })).toThrow(expect.objectContaining({ code: "FIRMWARE_MANIFEST_MALFORMED" }));
    for (const text of ['{"a":1,"a":2}', '{ "a":1}', '{"b":1,"a":2}', "[1.0]", "[1e2]"])
      expect(() => parseCanonical(Buffer.from(text), "x"), text).toThrow(expect.objectContaining({ code: "FIRMWARE_MANIFEST_MALFORMED" }));
  });

  it("the manifest parser answers any input with a coded error, never a crash", () => {
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
