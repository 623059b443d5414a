import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { Store } from "../../src/store/index.js";
import { tempDir } from "../helpers/temp.js";

/** SQLite's `synchronous` pragma: 1 = NORMAL, 2 = FULL. */
async function synchronousOf(store: Store): Promise<number> {
  const { rows } = await sql<{ synchronous: number }>`pragma synchronous`.execute(store.db);
  return rows[0]!.synchronous;
}

describe("SQLite store durability", () => {
  it("syncs the WAL on every commit by default (synchronous=FULL), so an acknowledged write survives a power loss", async () => {
    const dir = tempDir();
    const store = await Store.open({ dataDir: dir.path });
    try {
      expect(await synchronousOf(store)).toBe(2);
      const { rows } = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(store.db);
      expect(rows[0]!.journal_mode).toBe("wal");
    } finally {
      await store.close();
      dir.cleanup();
    }
  });

  it("uses NORMAL only when asked (the bench's side-by-side figure)", async () => {
    const dir = tempDir();
    const store = await Store.open({ dataDir: dir.path, sqliteSynchronous: "normal" });
    try {
      expect(await synchronousOf(store)).toBe(1);
    } finally {
      await store.close();
      dir.cleanup();
    }
  });
});
