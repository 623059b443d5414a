import { InvalidArgumentError } from "commander";
import { isMoatError } from "../errors.js";
import { parseDuration } from "../lib/duration.js";
import { MAX_PAGE_ITEMS } from "../lib/page.js";

/** An option parser for "90s", "15m", "1h", "30d", "2w" → milliseconds (lib/duration.ts). Usage errors exit 2. */
export function durationOption(text: string): number {
  try {
    return parseDuration(text, "the value");
  } catch (error) {
    if (isMoatError(error)) throw new InvalidArgumentError(error.message);
    throw error;
  }
}

/**
 * A whole-number flag within bounds. Anything else (`0` where 1 is the least, `1e3`, `-1`, a value past
 * the maximum) is a usage error (exit 2) that names the range: never clamped, never silently ignored.
 */
export function integerIn(min: number, max: number): (text: string) => number {
  return (text) => {
    if (!/^\d{1,16}$/.test(text)) throw new InvalidArgumentError(`'${text}' is not a whole number (${min}-${max})`);
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`'${text}' is outside ${min}-${max}`);
    return n;
  };
}

/** `--limit` of a list command: a page holds at most MAX_PAGE_ITEMS; more is a usage error, not a silent clamp. */
export function parsePageLimit(text: string): number {
  const n = integerIn(0, Number.MAX_SAFE_INTEGER)(text);
  if (n < 1 || n > MAX_PAGE_ITEMS) throw new InvalidArgumentError(`a page holds 1 to ${MAX_PAGE_ITEMS} items; page through the rest with --after`);
  return n;
}

export const parsePort = integerIn(0, 65_535);

/** Repeatable `--attr key=value`. */
export function collectKeyValue(text: string, previous: Record<string, string> = {}): Record<string, string> {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new InvalidArgumentError(`'${text}' is not key=value`);
  return { ...previous, [text.slice(0, eq)]: text.slice(eq + 1) };
}

/** Repeatable option collecting strings. */
export function collect(text: string, previous: string[] = []): string[] {
  return [...previous, text];
}

/**
 * A date or time flag: `2027-01-31` (midnight UTC) or a full ISO-8601 time with zone → ISO-8601 UTC.
 * Anything else is a usage error (exit 2).
 */
export function isoTimeOption(text: string): string {
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(text);
  if (!dateOnly && !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(text))
    throw new InvalidArgumentError(`'${text}' is not a date (YYYY-MM-DD) or an ISO-8601 time with a zone`);
  const time = new Date(dateOnly ? `${text}T00:00:00Z` : text);
  if (Number.isNaN(time.getTime())) throw new InvalidArgumentError(`'${text}' is not a valid date`);
  return time.toISOString();
}
