/**
 * Input generators for the fuzz targets: arbitrary bytes, and structure-aware mutations of a valid
 * sample (byte flips, truncation, extension, splices for DER and CBOR; value replacement, key removal
 * and insertion for JSON and YAML documents), so most cases get past the first length check.
 */
import fc from "fast-check";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";

/** One byte-level edit of `sample`. */
type ByteEdit =
  | { kind: "flip"; at: number; mask: number }
  | { kind: "set"; at: number; value: number }
  | { kind: "truncate"; at: number }
  | { kind: "extend"; bytes: Uint8Array }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "delete"; at: number; length: number }
  | { kind: "duplicate"; at: number; length: number };

const edit: fc.Arbitrary<ByteEdit> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  // Bytes that matter to DER and CBOR: long-form lengths, indefinite lengths, tags, nulls.
  fc.record({ kind: fc.constant("set" as const), at: fc.nat(), value: fc.constantFrom(0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x84, 0x88, 0x9f, 0xbf, 0xff, 0x30, 0x31, 0x02, 0x03, 0x04, 0x05, 0x06, 0xa0, 0xd2, 0xd0) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("extend" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 32 }) }),
  fc.record({ kind: fc.constant("duplicate" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
);

function applyEdit(bytes: Buffer, e: ByteEdit): Buffer {
  if (bytes.length === 0 && e.kind !== "extend" && e.kind !== "insert") return bytes;
  const at = bytes.length === 0 ? 0 : e.kind === "insert" ? e.at % (bytes.length + 1) : "at" in e ? e.at % bytes.length : 0;
  switch (e.kind) {
    case "flip": {
      const out = Buffer.from(bytes);
      out[at] = out[at]! ^ e.mask;
      return out;
    }
    case "set": {
      const out = Buffer.from(bytes);
      out[at] = e.value;
      return out;
    }
    case "truncate":
      return bytes.subarray(0, at);
    case "extend":
      return Buffer.concat([bytes, e.bytes]);
    case "insert":
      return Buffer.concat([bytes.subarray(0, at), e.bytes, bytes.subarray(at)]);
    case "delete":
      return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + e.length)]);
    case "duplicate":
      return Buffer.concat([bytes.subarray(0, at + e.length), bytes.subarray(at, at + e.length), bytes.subarray(at + e.length)]);
  }
}

/** 1 to 4 byte edits of one of the samples. */
export function mutatedBytes(samples: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc
    .tuple(fc.constantFrom(...samples), fc.array(edit, { minLength: 1, maxLength: 4 }))
    .map(([sample, edits]) => edits.reduce(applyEdit, sample));
}

/** Arbitrary bytes, mutated samples, and the samples themselves. */
export function bytesInput(samples: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 1024 }).map((b) => Buffer.from(b)) },
    { weight: 7, arbitrary: mutatedBytes(samples) },
    { weight: 1, arbitrary: fc.constantFrom(...samples) },
  );
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every path to a value inside `value` (the root is []). */
function pathsOf(value: Json, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(value)) value.forEach((v, i) => pathsOf(v, [...prefix, i], out));
  else if (value !== null && typeof value === "object") for (const [k, v] of Object.entries(value)) pathsOf(v, [...prefix, k], out);
  return out;
}

type JsonEdit = { kind: "replace"; value: unknown } | { kind: "remove" } | { kind: "add"; key: string; value: unknown };

function applyJsonEdit(root: Json, path: (string | number)[], e: JsonEdit): Json {
  const copy = structuredClone(root);
  if (path.length === 0) return e.kind === "replace" ? (e.value as Json) : copy;
  let parent: Json = copy;
  for (const step of path.slice(0, -1)) parent = (parent as Record<string | number, Json>)[step]!;
  const last = path[path.length - 1]!;
  const container = parent as Record<string | number, Json>;
  if (e.kind === "replace") container[last] = e.value as Json;
  else if (e.kind === "remove") {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete container[last];
  } else {
    const target = container[last];
    if (Array.isArray(target)) target.push(e.value as Json);
    else if (target !== null && typeof target === "object") (target as Record<string, Json>)[e.key] = e.value as Json;
    else container[last] = e.value as Json;
  }
  return copy;
}

/** Values that tend to break assumptions: wrong types, huge and odd numbers, odd strings. */
export const oddValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(null, true, 0, -1, 1.5, 1e308, -1e308, 2 ** 53, "", "\u0000", "../../etc/passwd", "a".repeat(5000), [], {}, [[]], { __proto__: 1 }, "__proto__", "constructor"),
);

/** 1 to 3 structural edits of one of the JSON samples (already parsed). */
export function mutatedJson(samples: readonly unknown[]): fc.Arbitrary<unknown> {
  const jsonEdit: fc.Arbitrary<JsonEdit> = fc.oneof(
    fc.record({ kind: fc.constant("replace" as const), value: oddValue }),
    fc.record({ kind: fc.constant("remove" as const) }),
    fc.record({ kind: fc.constant("add" as const), key: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom("__proto__", "constructor", "critical")), value: oddValue }),
  );
  return fc
    .tuple(fc.constantFrom(...samples), fc.array(fc.tuple(fc.nat(), jsonEdit), { minLength: 1, maxLength: 3 }))
    .map(([sample, edits]) =>
      edits.reduce<Json>((value, [pick, e]) => {
        const paths = pathsOf(value);
        return applyJsonEdit(value, paths[pick % paths.length]!, e);
      }, sample as Json),
    );
}

/** JSON text: arbitrary text, structural and byte mutations of the samples. */
export function jsonText(samples: readonly string[]): fc.Arbitrary<string> {
  const parsed = samples.map((s) => JSON.parse(s) as unknown);
  return fc.oneof(
    { weight: 1, arbitrary: fc.string({ maxLength: 256, unit: "binary" }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
    { weight: 5, arbitrary: mutatedJson(parsed).map((v) => JSON.stringify(v) ?? "null") },
    { weight: 3, arbitrary: mutatedBytes(samples.map((s) => Buffer.from(s))).map((b) => b.toString("utf8")) },
  );
}

/** YAML text: arbitrary text, structural mutations re-serialised, and text mutations of the samples. */
export function yamlText(samples: readonly string[]): fc.Arbitrary<string> {
  const parsed = samples.map((s) => parseYaml(s) as unknown);
  return fc.oneof(
    { weight: 1, arbitrary: fc.string({ maxLength: 256, unit: "binary" }) },
    { weight: 5, arbitrary: mutatedJson(parsed).map((v) => stringifyYaml(v)) },
    { weight: 3, arbitrary: mutatedBytes(samples.map((s) => Buffer.from(s))).map((b) => b.toString("utf8")) },
    // YAML features a hostile file would use: anchors and aliases (billion laughs), tags, merge keys.
    { weight: 1, arbitrary: fc.constantFrom("a: &a [1,2]\nb: &b [*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c]\n", "!!binary AAAA", "x: !!js/function 'f'", "<<: {a: 1}", "%YAML 1.1\n---\n", "? [a]\n: b\n") },
  );
}
