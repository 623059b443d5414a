// One way to read a duration typed by a person (a CLI flag, an API field): a whole number and one
// unit. The result is always milliseconds, whatever the caller later stores (seconds for token
// lifetimes, an ISO date for expiry filters), so a value never changes meaning between callers.
import { MoatError } from "../errors.js";

export const DURATION_UNITS_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
export type DurationUnit = keyof typeof DURATION_UNITS_MS;

/** The longest duration accepted: ten years (anything longer is a typo, and stays far from Date's limits). */
export const MAX_DURATION_MS = 10 * 365 * DURATION_UNITS_MS.d;

const DURATION = /^(\d{1,12})([smhdw])$/;

/**
 * Parses `90s`, `15m`, `12h`, `30d` or `2w` (s seconds, m minutes, h hours, d days, w weeks) into
 * **milliseconds**. Zero, other units, fractions, signs and anything over {@link MAX_DURATION_MS}
 * are refused with DURATION_INVALID, naming `what` (the flag or field) and the value.
 */
export function parseDuration(text: string, what = "duration"): number {
  const match = typeof text === "string" ? DURATION.exec(text.trim()) : null;
  if (!match) throw new MoatError("DURATION_INVALID", `${what} ${JSON.stringify(text)} is not a duration like 90s, 15m, 12h, 30d or 2w`);
  const ms = Number(match[1]) * DURATION_UNITS_MS[match[2] as DurationUnit];
  if (ms <= 0 || ms > MAX_DURATION_MS) throw new MoatError("DURATION_INVALID", `${what} ${JSON.stringify(text)} is out of range (more than 0, at most 10 years)`);
  return ms;
}
