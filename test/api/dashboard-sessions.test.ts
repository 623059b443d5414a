/**
 * Dashboard sessions over a real installation's token service and change feed: ids stored only hashed,
 * the 8-hour idle limit, and a revoked (or expired) token ending its sessions at once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DashboardSessions, SESSION_IDLE_MS, cookieValue } from "../../src/api/dashboard/sessions.js";
import { createTestApp, type TestApp } from "../helpers/app.js";

describe("dashboard sessions", () => {
  let t: TestApp;
  let clock = Date.now();
  let sessions: DashboardSessions;

  beforeAll(async () => {
    t = await createTestApp("sqlite");
    sessions = new DashboardSessions({ current: (id) => t.app.tokens.current(id), changes: t.app.store }, () => clock);
  });
  afterAll(async () => {
    sessions?.close();
    await t?.cleanup();
  });

  it("keeps only the hash of a session id, and resolves the id to its operator and CSRF token", async () => {
    const { record } = await t.app.tokens.create({ name: "s-one", role: "auditor" }, "test");
    const { id, csrf } = sessions.create(record);
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const stored = [...(sessions as unknown as { sessions: Map<string, unknown> }).sessions.keys()];
    expect(stored).not.toContain(id);
    expect(stored.every((key) => /^[0-9a-f]{64}$/.test(key))).toBe(true);
    expect(await sessions.resolve(id)).toMatchObject({ operator: { name: "s-one", role: "auditor" }, csrf });
    expect(await sessions.resolve(id.slice(0, -1) + (id.endsWith("A") ? "B" : "A"))).toBeNull();
    expect(DashboardSessions.csrfMatches(csrf, csrf)).toBe(true);
    expect(DashboardSessions.csrfMatches(csrf, csrf.slice(1))).toBe(false);
    expect(DashboardSessions.csrfMatches(csrf, undefined)).toBe(false);
  });

  it("ends a session after 8 hours without a request, and each request restarts the 8 hours", async () => {
    const { record } = await t.app.tokens.create({ name: "s-idle", role: "auditor" }, "test");
    const { id } = sessions.create(record);
    clock += SESSION_IDLE_MS - 1000;
    expect(await sessions.resolve(id)).not.toBeNull();
    clock += SESSION_IDLE_MS - 1000;
    expect(await sessions.resolve(id)).not.toBeNull();
    clock += SESSION_IDLE_MS + 1;
    expect(await sessions.resolve(id)).toBeNull();
  });

  it("ends every session of a token when it is revoked, through the change feed, before any request", async () => {
    const { record } = await t.app.tokens.create({ name: "s-revoked", role: "operator" }, "test");
    const a = sessions.create(record);
    const b = sessions.create(record);
    const before = sessions.size;
    await t.app.tokens.revoke("s-revoked", "test");
    for (let i = 0; i < 100 && sessions.size > before - 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(sessions.size).toBe(before - 2);
    expect(await sessions.resolve(a.id)).toBeNull();
    expect(await sessions.resolve(b.id)).toBeNull();
  });

  it("ends a session whose token expired", async () => {
    const { record } = await t.app.tokens.create({ name: "s-expiring", role: "auditor", expiresInSeconds: 1 }, "test");
    const { id } = sessions.create(record);
    expect(await sessions.resolve(id)).not.toBeNull();
    await new Promise((r) => setTimeout(r, 1100));
    expect(await sessions.resolve(id)).toBeNull();
  });

  it("reads one cookie from a Cookie header", () => {
    expect(cookieValue("a=1; moat_session=xyz; b=2", "moat_session")).toBe("xyz");
    expect(cookieValue("moat_sessionx=1", "moat_session")).toBeUndefined();
    expect(cookieValue(undefined, "moat_session")).toBeUndefined();
  });
});
