/**
 * Device JWT credentials in the store, over SQLite and PostgreSQL: registered keys (allow-listed key
 * types only), HMAC secrets sealed by the KEK envelope, rotation with a grace period, and the
 * change-feed rows and events each change writes.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, forEachDialect, type TestDatabase } from "../../test/helpers/dialects.js";
import { Envelope, singleKekProvider, softwareKek } from "../keys/index.js";
import type { Change } from "../ports.js";
import { PolicyService } from "../policy/index.js";
import { identityStore, policyStore, type Store } from "../store/index.js";
import { DeviceCredentialService } from "./device-credentials.js";
import { DeviceService } from "./device-service.js";

forEachDialect("identity: device credentials", (dialect) => {
  let db: TestDatabase;
  let store: Store;
  let service: DeviceCredentialService;
  const clock = new Date("2030-01-01T00:00:00Z");
  const changes: Change[] = [];
  let stop: () => void;

  beforeAll(async () => {
    db = await createTestDatabase(dialect);
    store = await db.openStore();
    const envelope = new Envelope(singleKekProvider("test", softwareKek(randomBytes(32), "test")));
    service = new DeviceCredentialService(identityStore(store), envelope, () => clock);
    const devices = new DeviceService(identityStore(store), deviceRoles(store));
    await devices.create({ id: "cred-1", status: "active" }, "test");
    await devices.create({ id: "gone", status: "active" }, "test");
    await devices.setStatus("gone", "decommissioned", "test");
    stop = store.subscribe((change) => changes.push(change));
  });

  afterAll(async () => {
    stop?.();
    await store?.close();
    await db?.cleanup();
  });

  it("registers P-256 and Ed25519 keys once each and lists them", async () => {
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "pem", type: "spki" });
    const ed = generateKeyPairSync("ed25519").publicKey.export({ format: "der", type: "spki" });
    const a = await service.addKey("cred-1", ec, "test");
    const b = await service.addKey("cred-1", ed, "test");
    expect(a.keyId).toMatch(/^key:[0-9a-f]{16}$/);
    await expect(service.addKey("cred-1", ec, "test")).rejects.toMatchObject({ code: "BROKER_KEY_EXISTS" });
    expect((await service.listKeys("cred-1")).map((k) => k.keyId).sort()).toEqual([a.keyId, b.keyId].sort());
    expect((await service.publicKeys("cred-1")).every((k) => k.source === "registered" && k.pem.includes("BEGIN PUBLIC KEY"))).toBe(true);
  });

  it.each([
    ["an RSA key", () => generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ format: "pem", type: "spki" }), "BROKER_KEY_UNSUPPORTED"],
    ["a P-384 key", () => generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey.export({ format: "pem", type: "spki" }), "BROKER_KEY_UNSUPPORTED"],
    ["a private key", () => generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" }), "BROKER_KEY_INVALID"],
    ["garbage", () => "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "BROKER_KEY_INVALID"],
    ["an oversized file", () => Buffer.alloc(20_000, 0x41), "BROKER_KEY_INVALID"],
  ])("refuses %s and stores nothing", async (_name, make, code) => {
    const before = (await service.listKeys("cred-1")).length;
    await expect(service.addKey("cred-1", make() as string | Buffer, "test")).rejects.toMatchObject({ code });
    expect(await service.listKeys("cred-1")).toHaveLength(before);
  });

  it("refuses credentials for unknown and decommissioned devices", async () => {
    await expect(service.rotateSecret("nobody", 60, "test")).rejects.toMatchObject({ code: "DEVICE_NOT_FOUND" });
    await expect(service.rotateSecret("gone", 60, "test")).rejects.toMatchObject({ code: "DEVICE_STATUS_TRANSITION" });
  });

  it("rotates secrets with a grace period, keeps at most two, and stores them only sealed", async () => {
    const first = await service.rotateSecret("cred-1", 3600, "test");
    expect(first.previousValidUntil).toBeNull();
    const second = await service.rotateSecret("cred-1", 3600, "test");
    expect(second.previousValidUntil).toBe("2030-01-01T01:00:00.000Z");
    let secrets = await service.hmacSecrets("cred-1");
    expect(secrets.map((s) => Buffer.from(s.secret).toString("base64url"))).toEqual([second.secret, first.secret]);
    expect(secrets[1]!.notAfter).toBe("2030-01-01T01:00:00.000Z");

    const third = await service.rotateSecret("cred-1", 0, "test");
    secrets = await service.hmacSecrets("cred-1");
    // The first secret is deleted; the second's grace ended at once (0 s): kept only to name the refusal.
    expect(secrets.map((s) => Buffer.from(s.secret).toString("base64url"))).toEqual([third.secret, second.secret]);
    expect(secrets[1]!.notAfter).toBe("2030-01-01T00:00:00.000Z");

    const rows = await store.db.selectFrom("device_secrets").selectAll().where("device_id", "=", "cred-1").execute();
    expect(rows).toHaveLength(2);
    for (const row of rows) expect(Buffer.from(row.sealed).includes(Buffer.from(third.secret, "base64url"))).toBe(false);

  });

  it("writes credential.changed to the feed and events to the audit log for each change", async () => {
    await new Promise((r) => setTimeout(r, 200));
    expect(changes.filter((c) => c.kind === "credential.changed" && c.subject === "cred-1").length).toBeGreaterThanOrEqual(5);
    const events = await store.db.selectFrom("audit_events").select(["type", "data"]).where("subject", "=", "cred-1").execute();
    const types = events.map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(["credential.key_added", "credential.secret_rotated"]));
    for (const e of events) expect(String(e.data)).not.toMatch(/secret":"[A-Za-z0-9_-]{43}/);
  });
});

/** The registry asks the policy domain which roles a device may hold, as in the application. */
function deviceRoles(store: Store): (role: string) => Promise<boolean> {
  const policy = new PolicyService(policyStore(store));
  return (role) => policy.isDeviceRole(role);
}
