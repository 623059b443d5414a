import { MoatError } from "../errors.js";

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** Parses `90s`, `15m`, `1h`, `30d`, `2w` into milliseconds (bounded so no overflow reaches a Date). */
export function parseDuration(text: string, what = "duration"): number {
  const match = /^(\d{1,6})([smhdw])$/.exec(text.trim());
  if (!match) throw new MoatError("PKI_DURATION_INVALID", `${what} ${JSON.stringify(text)} is not like 90m, 12h or 30d`);
  const ms = Number(match[1]) * UNITS[match[2]!]!;
  if (ms <= 0 || ms > 10 * 365 * 86_400_000) throw new MoatError("PKI_DURATION_INVALID", `${what} ${JSON.stringify(text)} is out of range`);
  return ms;
}
