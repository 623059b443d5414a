import { MoatError } from "../errors.js";

/**
 * The most items one page of any list holds (API, CLI, services). Bigger answers are paged, never cut:
 * asking for more is an error that says so, because a silent clamp looks like a complete answer.
 */
export const MAX_PAGE_ITEMS = 1000;

/** A caller's page size, or `fallback` when none was asked for; PAGE_LIMIT_EXCEEDED outside 1..MAX_PAGE_ITEMS. */
export function pageLimit(limit: number | undefined, fallback: number): number {
  if (limit === undefined) return fallback;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_ITEMS)
    throw new MoatError("PAGE_LIMIT_EXCEEDED", `a page holds 1 to ${MAX_PAGE_ITEMS} items (asked for ${limit}); page through the rest with the next cursor`);
  return limit;
}
