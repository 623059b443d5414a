/**
 * Device JWT credentials in the store, over SQLite and PostgreSQL: registered keys (allow-listed key
 * types only), HMAC secrets sealed by the KEK envelope, rotation with a grace period, and the
 * change-feed rows and events each change writes.
 */
import { createPublicKey, generateKeyPairSync, randomBytes } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestDatabase, forEachDialect, type TestDatabase } from "../../test/helpers/dialects.js";
import { Envelope, singleKekProvider, softwareKek } from "../keys/index.js";
import { writtenAbout } from "../../test/helpers/written.js";
import { publicKeyId, secretId } from "../crypto/index.js";
import { isDeviceRoleIn } from "../policy/index.js";
import { identityStore, policyStore, type Store } from "../store/index.js";
import { DeviceCredentialService } from "./device-credentials.js";
import { DeviceService } from "./device-service.js";

forEachDialect("identity: device credentials", (dialect) => {
  let db: TestDatabase;
  let store: Store;
  let service: DeviceCredentialService;
  const clock = new Date("2030-01-01T00:00:00Z");

  beforeAll(async () => {
    db = await createTestDatabase(dialect);
    store = await db.openStore();
    const envelope = new Envelope(singleKekProvider("test", softwareKek(randomBytes(32), "test")));
    service = new DeviceCredentialService(identityStore(store), envelope, () => clock);
    const devices = new DeviceService(identityStore(store), (role) => isDeviceRoleIn(policyStore(store).roles, role));
    await devices.create({ id: "cred-1", status: "active" }, "test");
    await devices.create({ id: "gone", status: "active" }, "test");
    await devices.setStatus("gone", "decommissioned", "test");
    await devices.create({ id: "keys-1", status: "active" }, "test");
    await devices.create({ id: "other", status: "active" }, "test");
  });

  afterAll(async () => {
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

  it("names keys and secrets by the shared credential ids the broker reports", async () => {
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const added = await service.addKey("keys-1", pair.publicKey.export({ format: "pem", type: "spki" }), "test");
    expect(added.keyId).toBe(publicKeyId(pair.publicKey));
    expect(await service.publicKeys("keys-1")).toEqual([{ pem: added.spkiPem, source: "registered", id: added.keyId }]);
    expect(publicKeyId(createPublicKey((await service.publicKeys("keys-1"))[0]!.pem))).toBe(added.keyId);
    const rotated = await service.rotateSecret("keys-1", 60, "test");
    const [current] = await service.hmacSecrets("keys-1");
    expect(rotated.secretId).toBe(secretId(current!.secret));
  });

  it("removes a key with an event and a feed row; an unknown key is BROKER_KEY_NOT_FOUND", async () => {
    const key = (await service.listKeys("keys-1"))[0]!;
    const before = await writtenAbout(store, "keys-1");
    await service.removeKey("keys-1", key.keyId, "carol");
    expect(await service.listKeys("keys-1")).toEqual([]);
    const after = await writtenAbout(store, "keys-1");
    expect(after.changes.slice(before.changes.length)).toEqual([{ kind: "credential.changed", data: { deviceId: "keys-1", keyId: key.keyId } }]);
    expect(after.events.slice(before.events.length)).toEqual([{ type: "credential.key_removed", severity: "medium", actor: "carol", data: { keyId: key.keyId } }]);
    await expect(service.removeKey("keys-1", key.keyId, "carol")).rejects.toMatchObject({ code: "BROKER_KEY_NOT_FOUND" });
    expect(await writtenAbout(store, "keys-1")).toEqual(after);
  });

  it("binds a sealed secret to its device: moved to another device's row it does not open", async () => {
    await service.rotateSecret("other", 60, "test");
    const [mine] = await store.db.selectFrom("device_secrets").selectAll().where("device_id", "=", "cred-1").orderBy("created_at", "desc").execute();
    await store.db.deleteFrom("device_secrets").where("device_id", "=", "other").execute();
    await store.db.insertInto("device_secrets").values({ ...mine!, device_id: "other" }).execute();
    await expect(service.hmacSecrets("other")).rejects.toMatchObject({ code: "ENVELOPE_DECRYPT_FAILED" });
  });

  it("writes one credential.changed feed row and one event per change, never the secret", async () => {
    const written = await writtenAbout(store, "cred-1");
    const credentialChanges = written.changes.filter((c) => c.kind === "credential.changed");
    expect(credentialChanges).toHaveLength(5);
    expect(credentialChanges.every((c) => c.data.deviceId === "cred-1")).toBe(true);
    const types = written.events.map((e) => e.type).filter((t) => t.startsWith("credential."));
    expect(types).toEqual(["credential.key_added", "credential.key_added", "credential.secret_rotated", "credential.secret_rotated", "credential.secret_rotated"]);
    for (const e of written.events) expect(JSON.stringify(e.data)).not.toMatch(/[A-Za-z0-9_-]{43}/);
  });
});
