import { MoatError } from "../errors.js";

/** A JSON value Moat signs: no floats, no `undefined`, so every value has exactly one encoding. */
export type CanonicalValue = string | number | boolean | null | CanonicalValue[] | { [key: string]: CanonicalValue };

/**
 * Canonical JSON in the spirit of RFC 8785 (JCS), restricted to what firmware documents need:
 * object members sorted by UTF-16 code units (RFC 8785 §3.2.3), no insignificant whitespace,
 * strings escaped as ECMAScript JSON.stringify does (§3.2.2.2), and numbers limited to safe
 * integers so no float formatting rules are involved. Anything else is refused rather than guessed.
 */
export function canonicalize(value: unknown): string {
  return encode(value, "$");
}

/** UTF-8 bytes of {@link canonicalize}: the exact bytes that get signed. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), "utf8");
}

/**
 * Parses bytes that must already be canonical. Re-encoding the parse result must give the same
 * bytes back, which also refuses duplicate member names (JSON.parse keeps the last one silently,
 * a classic parser-differential trap), whitespace and non-integer numbers.
 */
export function parseCanonical(bytes: Uint8Array, what: string): unknown {
  const text = Buffer.from(bytes).toString("utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new MoatError("FIRMWARE_MANIFEST_MALFORMED", `${what} is not valid JSON`, { cause });
  }
  let again: string;
  try {
    again = canonicalize(value);
  } catch (cause) {
    throw new MoatError("FIRMWARE_MANIFEST_MALFORMED", `${what} holds a value canonical JSON does not allow`, { cause });
  }
  if (again !== text) throw new MoatError("FIRMWARE_MANIFEST_MALFORMED", `${what} is not in canonical form (RFC 8785 subset)`);
  return value;
}

/** In `u` mode a valid surrogate pair is one code point, so this matches only lone halves. */
const LONE_SURROGATE = /\p{Cs}/u;

function encode(value: unknown, at: string): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      if (LONE_SURROGATE.test(value)) throw malformed(at, "a string with a lone surrogate");
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isSafeInteger(value)) throw malformed(at, `the number ${value} (only safe integers are allowed)`);
      return String(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map((item, i) => encode(item, `${at}[${i}]`)).join(",")}]`;
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw malformed(at, "a non-plain object");
      const keys = Object.keys(value).sort(compareUtf16);
      const members: string[] = [];
      for (const key of keys) {
        const member = (value as Record<string, unknown>)[key];
        if (member === undefined) continue;
        members.push(`${encode(key, at)}:${encode(member, `${at}.${key}`)}`);
      }
      return `{${members.join(",")}}`;
    }
    default:
      throw malformed(at, `a ${typeof value}`);
  }
}

function compareUtf16(a: string, b: string): number {
  // Array#sort's default comparison is by UTF-16 code units, which is what RFC 8785 §3.2.3 asks for.
  return a < b ? -1 : a > b ? 1 : 0;
}

function malformed(at: string, what: string): MoatError {
  return new MoatError("FIRMWARE_MANIFEST_MALFORMED", `canonical JSON cannot encode ${what} at ${at}`);
}
