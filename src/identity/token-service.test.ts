/**
 * Operator API tokens over a real store: shown once and stored as a hash, checked against every way a
 * presented token can be wrong, revoked with an event and a feed row, and touched at most once a minute.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, forEachDialect, type TestDatabase } from "../../test/helpers/dialects.js";
import { writtenAbout } from "../../test/helpers/written.js";
import { identityStore, type Store } from "../store/index.js";
import { TokenService, parseOperatorToken } from "./token-service.js";

const ROLES = new Set(["admin", "operator", "auditor"]);

forEachDialect("identity: operator tokens", (dialect) => {
  let db: TestDatabase;
  let store: Store;
  let tokens: TokenService;

  beforeAll(async () => {
    db = await createTestDatabase(dialect);
    store = await db.openStore();
    tokens = new TokenService(identityStore(store), (role) => ROLES.has(role));
  });

  afterAll(async () => {
    await store?.close();
    await db?.cleanup();
  });

  it("is shown once, stored as a hash only, and announced by an event without the secret", async () => {
    const { token, record } = await tokens.create({ name: "ci", role: "operator", expiresInSeconds: 3600 }, "alice");
    expect(token).toMatch(/^moat_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(record).not.toHaveProperty("secretHash");
    expect(record).toMatchObject({ name: "ci", role: "operator", createdBy: "alice", revokedAt: null });
    const stored = JSON.stringify(await store.db.selectFrom("operator_tokens").selectAll().execute());
    expect(stored).not.toContain(parseOperatorToken(token)!.secret);
    const written = await writtenAbout(store, "ci");
    expect(written.events).toEqual([{ type: "operator.token_created", severity: "info", actor: "alice", data: { role: "operator", expiresAt: record.expiresAt } }]);
    expect(JSON.stringify(written)).not.toContain(parseOperatorToken(token)!.secret);
    expect((await tokens.authenticate(token)).name).toBe("ci");
    expect(JSON.stringify(await tokens.list())).not.toContain("secretHash");
  });

  it.each([
    ["a name that is taken", { name: "ci", role: "operator" }, "TOKEN_EXISTS"],
    ["a bad name", { name: "-ci", role: "operator" }, "VALIDATION_FAILED"],
    ["a role that does not exist", { name: "x1", role: "root" }, "VALIDATION_FAILED"],
    ["a zero expiry", { name: "x2", role: "operator", expiresInSeconds: 0 }, "VALIDATION_FAILED"],
    ["a fractional expiry", { name: "x3", role: "operator", expiresInSeconds: 1.5 }, "VALIDATION_FAILED"],
  ])("refuses %s and stores nothing", async (_name, input, code) => {
    const before = (await tokens.list()).length;
    await expect(tokens.create(input, "test")).rejects.toMatchObject({ code });
    expect(await tokens.list()).toHaveLength(before);
  });

  it("refuses every wrong presentation with the same AUTH_TOKEN_INVALID", async () => {
    const { token } = await tokens.create({ name: "probe", role: "auditor" }, "test");
    const flip = (s: string) => s.slice(0, -1) + (s.at(-1) === "A" ? "B" : "A");
    const wrong = [
      "",
      "moat_",
      flip(token),
      token + "A",
      token.replace(/^moat_[0-9a-f]{16}/, "moat_0000000000000000"),
      token.replace("moat_", "moat-et_"),
      token.toUpperCase(),
    ];
    for (const presented of wrong) await expect(tokens.authenticate(presented)).rejects.toMatchObject({ code: "AUTH_TOKEN_INVALID" });
    expect((await tokens.authenticate(token)).name).toBe("probe");
  });

  it("refuses an expired token", async () => {
    const { token } = await tokens.create({ name: "short", role: "auditor", expiresInSeconds: 1 }, "test");
    await store.db.updateTable("operator_tokens").set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where("name", "=", "short").execute();
    await expect(tokens.authenticate(token)).rejects.toMatchObject({ code: "AUTH_TOKEN_INVALID" });
  });

  it("revokes with an event and a token.revoked feed row; revoking again writes nothing", async () => {
    const { token } = await tokens.create({ name: "gone", role: "operator" }, "test");
    const revoked = await tokens.revoke("gone", "bob");
    expect(revoked.revokedAt).toEqual(expect.any(String));
    await expect(tokens.authenticate(token)).rejects.toMatchObject({ code: "AUTH_TOKEN_INVALID" });
    const once = await writtenAbout(store, "gone");
    expect(once.changes).toEqual([{ kind: "token.revoked", data: {} }]);
    expect(once.events.at(-1)).toEqual({ type: "operator.token_revoked", severity: "low", actor: "bob", data: {} });
    expect(await tokens.revoke("gone", "bob")).toEqual(revoked);
    expect(await writtenAbout(store, "gone")).toEqual(once);
    await expect(tokens.revoke("never", "bob")).rejects.toMatchObject({ code: "TOKEN_NOT_FOUND" });
    await expect(tokens.get("never")).rejects.toMatchObject({ code: "TOKEN_NOT_FOUND" });
  });

  it("records the last use, but not on every request", async () => {
    const { token } = await tokens.create({ name: "used", role: "auditor" }, "test");
    const first = (await tokens.authenticate(token)).lastUsedAt;
    expect(first).toEqual(expect.any(String));
    expect((await tokens.get("used")).lastUsedAt).toBe(first);
    await tokens.authenticate(token);
    expect((await tokens.get("used")).lastUsedAt).toBe(first);
  });
});
