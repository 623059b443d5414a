import { InvalidArgumentError } from "commander";

/** "90s", "15m", "1h", "30d", "2w" → seconds. Usage errors exit 2. */
export function parseDuration(text: string): number {
  const match = /^(\d{1,9})([smhdw])$/.exec(text.trim());
  if (!match) throw new InvalidArgumentError(`'${text}' is not a duration like 90s, 15m, 1h, 30d or 2w`);
  const unit = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[match[2] as "s" | "m" | "h" | "d" | "w"];
  const seconds = Number(match[1]) * unit;
  if (seconds <= 0) throw new InvalidArgumentError("a duration must be positive");
  return seconds;
}

export function parseInteger(text: string): number {
  if (!/^\d{1,9}$/.test(text)) throw new InvalidArgumentError(`'${text}' is not a whole number`);
  return Number(text);
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
