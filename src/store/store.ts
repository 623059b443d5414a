import { EventEmitter } from "node:events";
import type { Kysely, Transaction } from "kysely";
import type { EventAppender, SecurityEventInput } from "../audit/index.js";
import { MoatError } from "../errors.js";
import { type Change, type ChangeFeed, type ChangeInput, type ChangeWriter, parseChange } from "../change-feed.js";
import { openDatabase, type DatabaseTarget } from "./database.js";
import { isRetryableWriteConflict, nowIso, type Dialect } from "./dialect.js";
import { assertSchemaCurrent, migrateToLatest, schemaStatus, type MigrationReport, type SchemaStatus } from "./migrator.js";
import { appendEvent } from "./repositories/audit.js";
import type { Database } from "./schema.js";

/** What a transaction gives the repositories: the Kysely transaction plus the event and feed writers. */
export interface StoreTx {
  db: Transaction<Database>;
  events: EventAppender;
  changes: ChangeWriter;
}

export interface StoreOptions extends DatabaseTarget {
  feedPollMs?: number;
}

const MAX_ATTEMPTS = 8;

/**
 * The store: one Kysely database, transactions with retry on write conflicts, the audit-chain appender,
 * and the change feed with its follower (in-process push after commit + polling for other processes).
 */
export class Store implements ChangeFeed {
  private readonly committed = new EventEmitter();
  private readonly feedListeners = new Set<(change: Change) => void>();
  private feedCursor: number | null = null;
  private feedTimer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  private closed = false;

  private constructor(
    readonly db: Kysely<Database>,
    readonly dialect: Dialect,
    readonly describe: string,
    private readonly feedPollMs: number,
  ) {
    this.committed.setMaxListeners(0);
  }

  static async open(options: StoreOptions): Promise<Store> {
    const opened = await openDatabase(options);
    return new Store(opened.db, opened.dialect, opened.describe, options.feedPollMs ?? 200);
  }

  /** Applies pending migrations. Only `moat init`, `moat migrate`, `moat serve` and `moat start` do. */
  migrate(): Promise<MigrationReport> {
    return migrateToLatest(this.db, this.dialect);
  }

  /** Applied, pending and unknown migrations; reads only. */
  schemaStatus(): Promise<SchemaStatus> {
    return schemaStatus(this.db, this.dialect);
  }

  /** SCHEMA_OUTDATED or SCHEMA_NEWER unless the schema is exactly this build's; changes nothing. */
  assertSchemaCurrent(): Promise<void> {
    return assertSchemaCurrent(this.db, this.dialect, this.describe);
  }

  /** Events appended by committed transactions, for live listeners (audit alerts, metrics). */
  onCommittedEvent(listener: (event: SecurityEventInput) => void): () => void {
    this.committed.on("event", listener);
    return () => this.committed.off("event", listener);
  }

  /**
   * Runs `fn` in one transaction. Events and change-feed rows written through `tx` commit or roll back
   * with the rest. Retried (from the start) when another writer conflicts.
   */
  async transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const events: SecurityEventInput[] = [];
      let wroteChanges = false;
      try {
        const result = await this.db.transaction().execute(async (trx) => {
          const tx: StoreTx = {
            db: trx,
            events: {
              append: async (event) => {
                await appendEvent(trx, event);
                events.push(event);
              },
            },
            changes: {
              append: async (change: ChangeInput) => {
                await trx
                  .insertInto("change_feed")
                  .values({ kind: change.kind, subject: change.subject, data: JSON.stringify(change.data ?? {}), created_at: nowIso() })
                  .execute();
                wroteChanges = true;
              },
            },
          };
          return fn(tx);
        });
        for (const event of events) this.committed.emit("event", event);
        if (wroteChanges) this.pollSoon();
        return result;
      } catch (error) {
        if (!isRetryableWriteConflict(error)) throw error;
        if (attempt >= MAX_ATTEMPTS) throw new MoatError("STORE_CONFLICT", "the database stayed busy; try again", { cause: error });
        await new Promise((r) => setTimeout(r, Math.min(200, 5 * 2 ** attempt) * (0.5 + Math.random())));
      }
    }
  }

  // --- change feed ---

  async latestSeq(): Promise<number> {
    const row = await this.db.selectFrom("change_feed").select((eb) => eb.fn.max("seq").as("seq")).executeTakeFirst();
    return Number(row?.seq ?? 0);
  }

  /**
   * Changes after `afterSeq`, oldest first. A row this version cannot read (unknown kind, data not of its
   * kind's shape) is passed over: `rowsAfter` shows it, followers never act on it.
   */
  async changesAfter(afterSeq: number, limit = 500): Promise<Change[]> {
    return (await this.rowsAfter(afterSeq, limit)).map((r) => r.change).filter((c): c is Change => c !== null);
  }

  /** Feed rows after `afterSeq`, each with its checked change (null when it cannot be read). */
  private async rowsAfter(afterSeq: number, limit: number): Promise<{ seq: number; change: Change | null }[]> {
    const rows = await this.db.selectFrom("change_feed").selectAll().where("seq", ">", afterSeq).orderBy("seq", "asc").limit(limit).execute();
    return rows.map((r) => {
      const seq = Number(r.seq);
      let data: unknown;
      try {
        data = JSON.parse(r.data);
      } catch {
        return { seq, change: null };
      }
      return { seq, change: parseChange({ seq, kind: r.kind, subject: r.subject, data, createdAt: r.created_at }) };
    });
  }

  /**
   * Follows the feed from now on. Listeners get every later change once, in order: pushed right after a
   * commit in this process, and found by polling when another process (a CLI on the same SQLite file,
   * another node on PostgreSQL) wrote it.
   */
  subscribe(listener: (change: Change) => void): () => void {
    this.feedListeners.add(listener);
    if (!this.feedTimer && !this.closed) {
      this.feedTimer = setInterval(() => this.pollSoon(), this.feedPollMs);
      this.feedTimer.unref();
      this.pollSoon();
    }
    return () => {
      this.feedListeners.delete(listener);
      if (this.feedListeners.size === 0 && this.feedTimer) {
        clearInterval(this.feedTimer);
        this.feedTimer = null;
      }
    };
  }

  private pollSoon(): void {
    if (this.feedListeners.size === 0 || this.closed) return;
    if (this.polling) {
      // A poll is running; run one more after it so a just-committed change is not missed.
      void this.polling.then(() => this.pollSoon());
      return;
    }
    this.polling = this.poll().finally(() => {
      this.polling = null;
    });
  }

  private async poll(): Promise<void> {
    try {
      if (this.feedCursor === null) {
        this.feedCursor = await this.latestSeq();
        return;
      }
      for (;;) {
        const rows = await this.rowsAfter(this.feedCursor, 500);
        for (const { seq, change } of rows) {
          this.feedCursor = seq;
          if (change === null) continue;
          for (const listener of this.feedListeners) {
            try {
              listener(change);
            } catch {
              // One failing follower must not stop the others.
            }
          }
        }
        if (rows.length < 500) return;
      }
    } catch {
      // The database may be briefly unavailable; the next tick polls again.
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.feedTimer) clearInterval(this.feedTimer);
    this.feedTimer = null;
    await this.polling;
    await this.db.destroy();
  }
}
