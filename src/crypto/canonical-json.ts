import { MoatError, type ErrorCode } from "../errors.js";

/** A JSON value with exactly one canonical encoding. */
export type CanonicalValue = string | number | boolean | null | CanonicalValue[] | { [key: string]: CanonicalValue };

export interface CanonicalJsonOptions {
  /**
   * Refuse what a verifier written in another language might encode differently: numbers that are
   * not safe integers, and strings with a lone surrogate (which RFC 8785 forbids). Signed firmware
   * documents use this; the audit log, which hashes any stored JSON value, does not.
   */
  readonly portable?: boolean;
  /** The code of the error for refused input (default CANONICAL_JSON_INVALID). */
  readonly code?: ErrorCode;
}

/**
 * Canonical JSON after RFC 8785 (JCS): object members sorted by UTF-16 code units (§3.2.3), no
 * insignificant whitespace, numbers in ECMAScript form (§3.2.2.3), strings escaped as ECMAScript
 * JSON.stringify does (§3.2.2.2; a lone surrogate becomes an escape unless `portable` refuses it),
 * members whose value is `undefined` left out. Everything else (non-finite numbers, `undefined`
 * elsewhere, functions, bigints, class instances such as Date) is refused rather than guessed.
 */
export function canonicalJson(value: unknown, options: CanonicalJsonOptions = {}): string {
  return encode(value, "$", options);
}

/** UTF-8 bytes of {@link canonicalJson}: the exact bytes that get signed or hashed. */
export function canonicalJsonBytes(value: unknown, options: CanonicalJsonOptions = {}): Buffer {
  return Buffer.from(canonicalJson(value, options), "utf8");
}

/**
 * Parses bytes that must already be canonical. Re-encoding the parse result must give the same
 * bytes back, which also refuses duplicate member names (JSON.parse keeps the last one silently,
 * a classic parser-differential trap), whitespace and numbers in any other form.
 */
export function parseCanonicalJson(bytes: Uint8Array, what: string, options: CanonicalJsonOptions = {}): unknown {
  const code = options.code ?? "CANONICAL_JSON_INVALID";
  const text = Buffer.from(bytes).toString("utf8");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new MoatError(code, `${what} is not valid JSON`, { cause });
  }
  let again: string;
  try {
    again = canonicalJson(value, options);
  } catch (cause) {
    throw new MoatError(code, `${what} holds a value canonical JSON does not allow`, { cause });
  }
  if (again !== text) throw new MoatError(code, `${what} is not in canonical form (RFC 8785)`);
  return value;
}

/** In `u` mode a valid surrogate pair is one code point, so this matches only lone halves. */
const LONE_SURROGATE = /\p{Cs}/u;

function encode(value: unknown, at: string, options: CanonicalJsonOptions): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      if (options.portable && LONE_SURROGATE.test(value)) throw refused(at, "a string with a lone surrogate", options);
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw refused(at, `the number ${value}`, options);
      if (options.portable && !Number.isSafeInteger(value)) throw refused(at, `the number ${value} (only safe integers are allowed)`, options);
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map((item, i) => encode(item, `${at}[${i}]`, options)).join(",")}]`;
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw refused(at, "a non-plain object", options);
      const members: string[] = [];
      // Array#sort's default comparison is by UTF-16 code units, which is what RFC 8785 §3.2.3 asks for.
      for (const key of Object.keys(value).sort()) {
        const member = (value as Record<string, unknown>)[key];
        if (member === undefined) continue;
        members.push(`${encode(key, at, options)}:${encode(member, `${at}.${key}`, options)}`);
      }
      return `{${members.join(",")}}`;
    }
    default:
      throw refused(at, `a ${typeof value}`, options);
  }
}

function refused(at: string, what: string, options: CanonicalJsonOptions): MoatError {
  return new MoatError(options.code ?? "CANONICAL_JSON_INVALID", `canonical JSON cannot encode ${what} at ${at}`);
}
