/**
 * What a domain wrote besides its own rows: the change-feed rows and security events about one subject,
 * read back from the store, so a test can check "same transaction, same rows" without a mock.
 */
import type { Store } from "../../src/store/index.js";

export interface WrittenRows {
  changes: { kind: string; data: Record<string, unknown> }[];
  events: { type: string; severity: string; actor: string; data: Record<string, unknown> }[];
}

export async function writtenAbout(store: Store, subject: string): Promise<WrittenRows> {
  const changes = await store.db.selectFrom("change_feed").select(["kind", "data"]).where("subject", "=", subject).orderBy("seq").execute();
  const events = await store.db.selectFrom("audit_events").select(["type", "severity", "actor", "data"]).where("subject", "=", subject).orderBy("seq").execute();
  return {
    changes: changes.map((c) => ({ kind: c.kind, data: JSON.parse(c.data) as Record<string, unknown> })),
    events: events.map((e) => ({ type: e.type, severity: e.severity, actor: e.actor, data: JSON.parse(e.data) as Record<string, unknown> })),
  };
}
