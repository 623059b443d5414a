/**
 * Range bans reach the MQTT listeners through the change feed: the executor (or an undo from the
 * command line, in another process) writes the ban and a `ban.changed` row; every serving node loads
 * the active bans at start and applies each row it follows.
 */
import type { Change, ChangeFeed } from "../ports.js";
import type { RangeBanTarget, RespondStore } from "./ports.js";

export async function followBans(store: RespondStore, feed: ChangeFeed, target: RangeBanTarget, onError: (error: unknown) => void = () => undefined): Promise<() => void> {
  // Follow first, then load: a ban written in between is applied twice (idempotent), never missed.
  const unsubscribe = feed.subscribe((change: Change) => {
    try {
      if (change.kind === "ban.changed") {
        if (change.data.op === "banned") target.banRange(change.data.range, change.data.expiresAt === null ? null : Date.parse(change.data.expiresAt));
        else target.unbanRange(change.data.range);
      }
    } catch (error) {
      onError(error);
    }
  });
  try {
    for (const ban of await store.bans.active(new Date().toISOString())) target.banRange(ban.range, ban.expiresAt === null ? null : Date.parse(ban.expiresAt));
  } catch (error) {
    unsubscribe();
    throw error;
  }
  return unsubscribe;
}
