/**
 * One-time EST enrollment tokens over a real store: made only for devices that may enroll, stored only
 * as a hash, redeemed once (also under concurrency), refused once expired, and left unused when the
 * redeeming transaction fails.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, forEachDialect, type TestDatabase } from "../../test/helpers/dialects.js";
import { writtenAbout } from "../../test/helpers/written.js";
import { PolicyService } from "../policy/index.js";
import { identityStore, policyStore, type Store } from "../store/index.js";
import { DeviceService } from "./device-service.js";
import { EnrollmentTokenService, parseEnrollmentToken } from "./enrollment-tokens.js";
import type { IdentityStore } from "./ports.js";

forEachDialect("identity: enrollment tokens", (dialect) => {
  let db: TestDatabase;
  let store: Store;
  let identity: IdentityStore;
  let tokens: EnrollmentTokenService;
  let clock = new Date("2030-01-01T00:00:00Z");
  const redeem = (token: string) => identity.transact((uow) => tokens.redeemIn(uow, token));

  beforeAll(async () => {
    db = await createTestDatabase(dialect);
    store = await db.openStore();
    identity = identityStore(store);
    tokens = new EnrollmentTokenService(identity, () => clock);
    const policy = new PolicyService(policyStore(store));
    const devices = new DeviceService(identity, (role) => policy.isDeviceRole(role));
    await devices.create({ id: "pending-1" }, "test");
    await devices.create({ id: "active-1", status: "active" }, "test");
    await devices.create({ id: "held-1", status: "active" }, "test");
    await devices.setStatus("held-1", "suspended", "test");
  });

  afterAll(async () => {
    await store?.close();
    await db?.cleanup();
  });

  it("is shown once, stored as a hash only, and announced by one event and no feed row", async () => {
    const { token, record } = await tokens.create("pending-1", 3_600_000, "alice");
    expect(token).toMatch(/^moat-et_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(record).toMatchObject({ deviceId: "pending-1", createdBy: "alice", expiresAt: "2030-01-01T01:00:00.000Z", usedAt: null });
    const rows = await store.db.selectFrom("enrollment_tokens").selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(parseEnrollmentToken(token)!.secret);
    expect(await tokens.list("pending-1")).toEqual([record]);
    const written = await writtenAbout(store, "pending-1");
    expect(written.events.filter((e) => e.type === "enroll_token.created")).toEqual([
      { type: "enroll_token.created", severity: "info", actor: "alice", data: { tokenId: record.id, expiresAt: record.expiresAt } },
    ]);
    expect(written.changes.filter((c) => c.kind.startsWith("enroll"))).toEqual([]);
  });

  it("is made only for known active or pending devices, with a positive lifetime of at most 30 days", async () => {
    await expect(tokens.create("nobody", 60_000, "test")).rejects.toMatchObject({ code: "DEVICE_NOT_FOUND" });
    await expect(tokens.create("held-1", 60_000, "test")).rejects.toMatchObject({ code: "PKI_DEVICE_NOT_ELIGIBLE" });
    for (const ttl of [0, -1, Number.NaN, Infinity, 30 * 86_400_000 + 1])
      await expect(tokens.create("active-1", ttl, "test")).rejects.toMatchObject({ code: "PKI_DURATION_INVALID" });
    expect(await tokens.list("held-1")).toEqual([]);
    expect(await tokens.list("active-1")).toEqual([]);
  });

  it("redeems once and names the device; a second use is PKI_ENROLL_TOKEN_USED", async () => {
    const { token, record } = await tokens.create("active-1", 60_000, "test");
    expect(await redeem(token)).toBe("active-1");
    await expect(redeem(token)).rejects.toMatchObject({ code: "PKI_ENROLL_TOKEN_USED" });
    expect((await tokens.list("active-1")).find((t) => t.id === record.id)?.usedAt).toBe(clock.toISOString());
  });

  it("refuses a token once its lifetime has passed, and leaves it unused", async () => {
    const { token, record } = await tokens.create("active-1", 1000, "test");
    const created = clock;
    clock = new Date(created.getTime() + 1000);
    try {
      await expect(redeem(token)).rejects.toMatchObject({ code: "PKI_ENROLL_TOKEN_EXPIRED" });
    } finally {
      clock = created;
    }
    expect((await tokens.list("active-1")).find((t) => t.id === record.id)?.usedAt).toBeNull();
  });

  it("refuses malformed, tampered and unknown tokens alike as PKI_ENROLL_TOKEN_INVALID", async () => {
    const { token } = await tokens.create("active-1", 60_000, "test");
    const last = token.at(-1) === "A" ? "B" : "A";
    const unknownId = token.replace(/^moat-et_[0-9a-f]{16}/, "moat-et_0000000000000000");
    for (const bad of ["", "moat-et_nope", token + "A", token.slice(0, -1) + last, unknownId, token.replace("moat-et_", "moat_")]) {
      await expect(redeem(bad)).rejects.toMatchObject({ code: "PKI_ENROLL_TOKEN_INVALID" });
    }
    expect(() => tokens.checkForm("moat-et_nope")).toThrow(expect.objectContaining({ code: "PKI_ENROLL_TOKEN_INVALID" }));
    expect(() => tokens.checkForm(token)).not.toThrow();
    // None of that used it up.
    expect(await redeem(token)).toBe("active-1");
  });

  it("stays unused when the redeeming transaction fails after it (a refused CSR)", async () => {
    const { token } = await tokens.create("active-1", 60_000, "test");
    await expect(
      identity.transact(async (uow) => {
        await tokens.redeemIn(uow, token);
        throw new Error("CSR refused");
      }),
    ).rejects.toThrow("CSR refused");
    expect(await redeem(token)).toBe("active-1");
  });

  it("is redeemed by exactly one of several concurrent requests", async () => {
    const { token } = await tokens.create("active-1", 60_000, "test");
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => redeem(token)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) if (r.status === "rejected") expect(r.reason).toMatchObject({ code: "PKI_ENROLL_TOKEN_USED" });
  });
});
