import { MoatError, type ErrorCode } from "../errors.js";

/** A non-empty string of at most `max` characters, or a coded error naming the field. */
export function requireString(value: unknown, what: string, code: ErrorCode = "FIRMWARE_MANIFEST_MALFORMED", max = 256): string {
  if (typeof value !== "string" || value.length === 0 || value.length > max)
    throw new MoatError(code, `${what} must be a non-empty string of at most ${max} characters`);
  return value;
}

/** A non-negative safe integer. */
export function requireCount(value: unknown, what: string, code: ErrorCode = "FIRMWARE_MANIFEST_MALFORMED"): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0)
    throw new MoatError(code, `${what} must be a non-negative integer`);
  return value;
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

/** An RFC 3339 UTC timestamp (`2026-01-31T12:00:00Z`). */
export function parseTime(value: unknown, what: string, code: ErrorCode = "FIRMWARE_MANIFEST_MALFORMED"): Date {
  if (typeof value !== "string" || !ISO_UTC.test(value) || Number.isNaN(Date.parse(value)))
    throw new MoatError(code, `${what} must be an RFC 3339 UTC time like 2026-01-31T12:00:00Z`);
  return new Date(value);
}
