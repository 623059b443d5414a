import { sql } from "kysely";
import { afterEach, beforeEach, expect, it } from "vitest";
import { AuditService } from "../../src/audit/index.js";
import { isMoatError } from "../../src/errors.js";
import { isDeviceRoleIn } from "../../src/policy/index.js";
import { DeviceService, TokenService, parseOperatorToken } from "../../src/identity/index.js";
import type { Change } from "../../src/ports.js";
import { AuditRepository, identityStore, policyStore, type Store } from "../../src/store/index.js";
import { createTestDatabase, forEachDialect, type TestDatabase } from "../helpers/dialects.js";

forEachDialect("foundation store", (dialect) => {
  let database: TestDatabase;
  let store: Store;
  let devices: DeviceService;
  let audit: AuditService;

  beforeEach(async () => {
    database = await createTestDatabase(dialect);
    store = await database.openStore();
    devices = new DeviceService(identityStore(store), (role) => isDeviceRoleIn(policyStore(store).roles, role));
    audit = new AuditService(new AuditRepository(store.db, (fn) => store.transaction((tx) => fn(tx.db))));
  });
  afterEach(async () => {
    await store.close();
    await database.cleanup();
  });

  it("re-running migrations is a no-op", async () => {
    expect((await store.migrate()).applied).toEqual([]);
  });

  it("creates, lists with filters and pages, updates and changes status", async () => {
    for (let i = 0; i < 5; i++) await devices.create({ id: `dev-${i}`, group: i % 2 ? "odd" : "even", attributes: { floor: String(i) } }, "test");
    const page1 = await devices.list({ limit: 2 });
    expect(page1.devices.map((d) => d.id)).toEqual(["dev-0", "dev-1"]);
    const page2 = await devices.list({ limit: 2, after: page1.next! });
    expect(page2.devices.map((d) => d.id)).toEqual(["dev-2", "dev-3"]);
    expect((await devices.list({ group: "odd" })).devices.map((d) => d.id)).toEqual(["dev-1", "dev-3"]);
    expect(await devices.count({ status: "pending" })).toBe(5);
    const updated = await devices.update("dev-1", { name: "Boiler", attributes: { floor: "9" } }, "test");
    expect(updated).toMatchObject({ name: "Boiler", attributes: { floor: "9" } });
    expect((await devices.get("dev-1")).name).toBe("Boiler");
    await devices.setStatus("dev-1", "active", "test");
    await devices.setStatus("dev-1", "decommissioned", "test");
    await expect(devices.setStatus("dev-1", "active", "test")).rejects.toSatisfy((e) => isMoatError(e, "DEVICE_STATUS_TRANSITION"));
  });

  it("refuses duplicates, bad ids and unknown ids with specific codes and writes nothing", async () => {
    await devices.create({ id: "a" }, "test");
    await expect(devices.create({ id: "a" }, "test")).rejects.toSatisfy((e) => isMoatError(e, "DEVICE_EXISTS"));
    await expect(devices.create({ id: "../etc" }, "test")).rejects.toSatisfy((e) => isMoatError(e, "DEVICE_ID_INVALID"));
    await expect(devices.get("nope")).rejects.toSatisfy((e) => isMoatError(e, "DEVICE_NOT_FOUND"));
    expect(await devices.count()).toBe(1);
    expect((await audit.list({ type: "device.created" })).length).toBe(1);
  });

  it("hash-chains events and names the first edited, deleted or reordered entry", async () => {
    for (let i = 0; i < 6; i++) await devices.create({ id: `d${i}` }, "test");
    expect(await audit.verify()).toMatchObject({ ok: true, entries: 6, problems: [] });

    await sql`update audit_events set actor = 'mallory' where seq = 3`.execute(store.db);
    expect(await audit.verify()).toMatchObject({ ok: false, firstBadSeq: 3 });
    await expect(audit.assertIntact()).rejects.toSatisfy((e) => isMoatError(e, "AUDIT_CHAIN_BROKEN"));
    await sql`update audit_events set actor = 'test' where seq = 3`.execute(store.db);
    expect((await audit.verify()).ok).toBe(true);

    await sql`delete from audit_events where seq = 4`.execute(store.db);
    expect(await audit.verify()).toMatchObject({ ok: false, firstBadSeq: 5 });
  });

  it("detects a truncated tail through the head row", async () => {
    for (let i = 0; i < 3; i++) await devices.create({ id: `t${i}` }, "test");
    await sql`delete from audit_events where seq = 3`.execute(store.db);
    expect(await audit.verify()).toMatchObject({ ok: false, firstBadSeq: 2 });
  });

  it("serialises concurrent appends into one unbroken chain", async () => {
    await Promise.all(Array.from({ length: 20 }, (_, i) => devices.create({ id: `c${i}` }, "test")));
    expect(await audit.verify()).toMatchObject({ ok: true, entries: 20, problems: [] });
  });

  it("rolls back events and feed rows with a failed transaction", async () => {
    await expect(
      store.transaction(async (tx) => {
        await tx.events.append({ type: "test.event" });
        await tx.changes.append({ kind: "device.status", subject: "x", data: { from: "active", to: "suspended" } });
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await audit.verify()).toMatchObject({ ok: true, entries: 0, problems: [] });
    expect(await store.latestSeq()).toBe(0);
  });

  it("a second process on the same database sees status changes through the feed", async () => {
    const follower = await database.openStore();
    try {
      const seen: Change[] = [];
      const arrived = new Promise<void>((resolve) =>
        follower.subscribe((c) => {
          seen.push(c);
          if (c.kind === "device.status") resolve();
        }),
      );
      await new Promise((r) => setTimeout(r, 150)); // let the follower take its starting cursor
      await devices.create({ id: "feed-1" }, "test");
      await devices.setStatus("feed-1", "suspended", "test");
      await arrived;
      expect(seen.find((c) => c.kind === "device.status")).toMatchObject({ subject: "feed-1", data: { from: "pending", to: "suspended" } });
    } finally {
      await follower.close();
    }
  });

  it("operator tokens: shown once, stored hashed, expiring and revocable", async () => {
    const tokens = new TokenService(identityStore(store), (role) => ["admin", "operator", "auditor"].includes(role));
    const { token } = await tokens.create({ name: "ci", role: "operator" }, "test");
    expect(token).toMatch(/^moat_[0-9a-f]{16}_/);
    const rows = await store.db.selectFrom("operator_tokens").selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(parseOperatorToken(token)!.secret);
    // The secret is base64url, so it may itself hold `_`: the parser, not a split, takes it apart.
    expect(parseOperatorToken(`moat_0123456789abcdef_${"_".repeat(42)}A`)).toEqual({ id: "0123456789abcdef", secret: `${"_".repeat(42)}A` });
    expect(parseOperatorToken(`${token}x`)).toBeNull();
    expect((await tokens.authenticate(token)).name).toBe("ci");
    await expect(tokens.authenticate(token.slice(0, -1) + (token.endsWith("A") ? "B" : "A"))).rejects.toSatisfy((e) => isMoatError(e, "AUTH_TOKEN_INVALID"));
    await expect(tokens.create({ name: "ci", role: "operator" }, "test")).rejects.toSatisfy((e) => isMoatError(e, "TOKEN_EXISTS"));
    await expect(tokens.create({ name: "x", role: "root" }, "test")).rejects.toSatisfy((e) => isMoatError(e, "VALIDATION_FAILED"));
    await tokens.revoke("ci", "test");
    await expect(tokens.authenticate(token)).rejects.toSatisfy((e) => isMoatError(e, "AUTH_TOKEN_INVALID"));
    const short = await tokens.create({ name: "short", role: "auditor", expiresInSeconds: 1 }, "test");
    await store.db.updateTable("operator_tokens").set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where("name", "=", "short").execute();
    await expect(tokens.authenticate(short.token)).rejects.toSatisfy((e) => isMoatError(e, "AUTH_TOKEN_INVALID"));
  });
});
