/**
 * The order in which a broker node takes in change-feed rows: the decider first, then the live sessions,
 * one row at a time.
 */
import type { Change } from "../ports.js";
import type { Enforcer } from "./enforcer.js";
import type { Decider } from "./ports.js";

/** How many row numbers are remembered to recognise a row that arrives twice. */
const SEEN_LIMIT = 10_000;

/**
 * This node's one ordered pipeline for change-feed rows: each row goes first to the decider (the policy
 * recompiles on a role or assignment change) and then, once the decider has it, to the live sessions.
 * Rows are applied one at a time in arrival order, so a re-check never runs on the policy from before
 * its row and no timer has to guess when a reload is done. A row seen twice (from the feed and from
 * another node's broadcast) is applied once.
 */
export class ChangePipeline {
  private readonly seen = new Set<number>();
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly decider: Pick<Decider, "applyChange">,
    private readonly enforcer: Enforcer,
    private readonly onError: (err: unknown, change: Change) => void,
  ) {}

  /** Marks a row as seen; false when this node has already taken it (from the feed or a broadcast). */
  admit(change: Change): boolean {
    if (this.seen.has(change.seq)) return false;
    this.seen.add(change.seq);
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value!);
    return true;
  }

  /** Queues an admitted row; resolves once the decider and the sessions have both applied it. Never rejects. */
  apply(change: Change): Promise<void> {
    this.enforcer.observe(change, this.enforcer.closeAtOnce(change));
    const run = this.tail.then(async () => {
      try {
        await this.decider.applyChange?.(change);
      } catch (err) {
        // The sessions are still re-checked, against the policy as it stands (the decider retries its load).
        this.onError(err, change);
      }
      await this.enforcer.apply(change);
    });
    this.tail = run;
    return run;
  }
}
