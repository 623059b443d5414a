import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson, parseCanonicalJson } from "./canonical-json.js";

const portable = { portable: true } as const;

const integerJson = fc.letrec<{ v: unknown }>((tie) => ({
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

describe("canonical JSON (RFC 8785)", () => {
  it("round-trips, and is independent of member order", () => {
    fc.assert(
      fc.property(integerJson, (v) => {
        const text = canonicalJson(v, portable);
        expect(canonicalJson(parseCanonicalJson(Buffer.from(text), "value", portable), portable)).toBe(text);
        expect(canonicalJson(v)).toBe(text);
        if (v && typeof v === "object" && !Array.isArray(v)) {
          const reversed = Object.fromEntries(Object.entries(v as Record<string, unknown>).reverse());
          expect(canonicalJson(reversed)).toBe(text);
        }
      }),
    );
  });

  it("sorts members by UTF-16 code units and writes numbers in ECMAScript form", () => {
    expect(canonicalJson({ b: 1, a: [true, null, "\u00e9"], "\u20ac": 0, "\ud83d\ude00": 1, "\ufb33": 2 })).toBe('{"a":[true,null,"\u00e9"],"b":1,"\u20ac":0,"\ud83d\ude00":1,"\ufb33":2}');
    // RFC 8785 appendix B values.
    expect(canonicalJson([1e21, 1e-7, 0.000001, -0, 333333333.33333329, 4.5e-324, 1.5])).toBe("[1e+21,1e-7,0.000001,0,333333333.3333333,5e-324,1.5]");
    expect(canonicalJson({ skipped: undefined, kept: 1 })).toBe('{"kept":1}');
  });

  it("refuses what has no single encoding; portable also refuses non-integers and lone surrogates", () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, new Date(0), () => 1, 1n, undefined, [undefined]])
      expect(() => canonicalJson({ x: bad, y: [bad] }), String(bad)).toThrow(expect.objectContaining({ code: "CANONICAL_JSON_INVALID" }));
    for (const bad of [1.5, Number.MAX_SAFE_INTEGER + 1, "\ud800", { "\udc00": 1 }])
      expect(() => canonicalJson({ x: bad }, { portable: true, code: "FIRMWARE_MANIFEST_MALFORMED" })).toThrow(expect.objectContaining({ code: "FIRMWARE_MANIFEST_MALFORMED" }));
    // Without `portable`, a lone surrogate is written as JSON.stringify escapes it, so any stored JSON value hashes.
    expect(canonicalJson({ x: "\ud800", y: 1.5 })).toBe('{"x":"\\ud800","y":1.5}');
  });

  it("parses only bytes that are already canonical", () => {
    expect(parseCanonicalJson(Buffer.from('{"a":[1,"x"],"b":null}'), "x")).toEqual({ a: [1, "x"], b: null });
    for (const text of ['{"a":1,"a":2}', '{ "a":1}', '{"b":1,"a":2}', "[1.0]", "[1e2]", "[1.5]", "not json"])
      expect(() => parseCanonicalJson(Buffer.from(text), "x", portable), text).toThrow(expect.objectContaining({ code: "CANONICAL_JSON_INVALID" }));
  });
});
