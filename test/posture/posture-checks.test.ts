/**
 * Every posture check fires on an installation that violates it and stays quiet on its clean twin
 * (the same installation with the violation fixed), over real SQLite and PostgreSQL installations:
 * real certificates from Moat's PKI (and openssl for what the PKI refuses to issue), real roles,
 * sessions from real audit events, a real scan of a plaintext MQTT broker.
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.js";
import { createApp, type App } from "../../src/core.js";
import { normalizeSerialHex } from "../../src/pki/index.js";
import type { Finding } from "../../src/posture/index.js";
import { SessionRecorder } from "../../src/sessions/index.js";
import { KyselySessionRepository } from "../../src/store/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { forEachDialect } from "../helpers/dialects.js";
import { buildCsr } from "../pki-fixture.js";
import { startAedesFixture } from "../scanner/fixtures.js";

const DAY = 86_400_000;

async function check(app: App, id: string, at?: number): Promise<{ status: string; findings: Finding[]; suppressed: Finding[] }> {
  const run = await app.posture.run({ check: id, actor: "test", ...(at !== undefined ? { at } : {}) });
  expect(run.checks).toHaveLength(1);
  return { status: run.checks[0]!.status, findings: run.findings.filter((f) => !f.suppressed), suppressed: run.findings.filter((f) => f.suppressed) };
}

const names = (findings: readonly Finding[], kind = "device") => findings.flatMap((f) => f.resources.filter((r) => r.kind === kind).map((r) => r.id));

/** An openssl-made certificate the PKI would never issue (weak key), for a fixture row. */
function opensslCertificate(dir: string, newkey: string[], name: string): { der: Buffer; serial: string; notBefore: string; notAfter: string } {
  const pem = join(dir, `${name}.pem`);
  execFileSync("openssl", ["req", "-x509", ...newkey, "-nodes", "-keyout", join(dir, `${name}.key`), "-out", pem, "-subj", `/CN=${name}`, "-days", "200"], { stdio: "ignore" });
  const cert = new X509Certificate(readFileSync(pem));
  return { der: cert.raw, serial: normalizeSerialHex(cert.serialNumber), notBefore: new Date(cert.validFrom).toISOString(), notAfter: new Date(cert.validTo).toISOString() };
}

forEachDialect("posture checks fire on a violation and stay quiet on the clean twin", (dialect) => {
  let t: TestApp;
  let app: App;
  let recorder: SessionRecorder;
  const others: App[] = [];

  /** The same installation opened with other settings (what another moat.yaml would give). */
  async function withSettings(flags: Record<string, unknown>): Promise<App> {
    const other = await createApp(
      loadConfig({ env: {}, flags: { dataDir: t.database.dataDir, databaseUrl: t.database.databaseUrl ?? undefined, logLevel: "silent", ...flags } as never }),
    );
    others.push(other);
    return other;
  }

  beforeAll(async () => {
    t = await createTestApp(dialect);
    app = t.app;
    recorder = new SessionRecorder(new KyselySessionRepository(app.store.db));
    await recorder.start(app.audit);
  });
  afterAll(async () => {
    await recorder?.stop();
    for (const other of others) await other.close();
    await t?.cleanup();
  });

  it("device-certificate-shared: one public key on two devices (certificates or registered keys)", async () => {
    for (const id of ["twin-a", "twin-b", "solo"]) await app.devices.create({ id }, "test");
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await app.pki.certificates.issueFromCsr({ deviceId: "twin-a", csr: buildCsr({ key: privateKey, subject: [["2.5.4.3", "twin-a"]] }).der, actor: "test" });
    const b = await app.pki.certificates.issueFromCsr({ deviceId: "twin-b", csr: buildCsr({ key: privateKey, subject: [["2.5.4.3", "twin-b"]] }).der, actor: "test" });
    await app.pki.certificates.issueWithGeneratedKey({ deviceId: "solo", actor: "test" });
    const fired = await check(app, "device-certificate-shared");
    expect(fired.status).toBe("failed");
    expect(names(fired.findings).sort()).toEqual(["twin-a", "twin-b"]);
    expect(fired.findings[0]!.evidence).toMatchObject({ devices: 2 });
    // The twin: twin-b's shared certificate is revoked; the key now sits on one device only.
    await app.pki.certificates.revoke(b.serialHex, "keyCompromise", "test");
    const quiet = await check(app, "device-certificate-shared");
    expect(quiet).toMatchObject({ status: "passed", findings: [] });

    // A key registered for device JWTs counts too.
    const pem = createPublicKeyPem();
    await app.deviceCredentials.addKey("twin-b", pem, "test");
    const key = await app.deviceCredentials.addKey("solo", pem, "test");
    expect(names((await check(app, "device-certificate-shared")).findings).sort()).toEqual(["solo", "twin-b"]);
    await app.deviceCredentials.removeKey("solo", key.keyId, "test");
    expect((await check(app, "device-certificate-shared")).findings).toEqual([]);
  });

  it("device-certificate-expiring: the device's newest certificate ends inside pki.expiryWindowDays", async () => {
    await app.devices.create({ id: "short-lived" }, "test");
    await app.devices.create({ id: "long-lived" }, "test");
    const short = await app.pki.certificates.issueWithGeneratedKey({ deviceId: "short-lived", days: 5, actor: "test" });
    await app.pki.certificates.issueWithGeneratedKey({ deviceId: "long-lived", days: 90, actor: "test" });
    const fired = await check(app, "device-certificate-expiring");
    expect(names(fired.findings)).toContain("short-lived");
    expect(names(fired.findings)).not.toContain("long-lived");
    expect(fired.findings.find((f) => names([f]).includes("short-lived"))!.evidence).toMatchObject({ serial: short.serialHex, windowDays: 30 });
    // The twin: renewed with a full-length certificate, the old one no longer matters.
    await app.pki.certificates.issueWithGeneratedKey({ deviceId: "short-lived", days: 90, actor: "test" });
    expect(names((await check(app, "device-certificate-expiring")).findings)).not.toContain("short-lived");
  });

  it("device-certificate-old: older than posture.certificateMaxAgeDays (evaluated as of a later date)", async () => {
    await app.devices.create({ id: "aging" }, "test");
    await app.pki.certificates.issueWithGeneratedKey({ deviceId: "aging", days: 397, actor: "test" });
    expect(names((await check(app, "device-certificate-old")).findings)).not.toContain("aging");
    const later = await check(app, "device-certificate-old", Date.now() + 370 * DAY);
    expect(names(later.findings)).toContain("aging");
  });

  it("device-key-weak and ca-key-weak: RSA-1024 and secp256k1 keys the PKI would never issue", async () => {
    const weak = opensslCertificate(t.database.dataDir, ["-newkey", "rsa:1024"], "weak-device");
    await app.devices.create({ id: "weak-device", status: "active" }, "test");
    const issuer = (await app.ca.active("issuing")).serialHex;
    const row = { serial: weak.serial, device_id: "weak-device", issuer_serial: issuer, subject: "CN=weak-device", fingerprint: "00", key_kind: "rsa", not_before: weak.notBefore, not_after: weak.notAfter, status: "active", created_at: new Date().toISOString(), certificate_der: weak.der };
    await app.store.db.insertInto("certificates").values(row).execute();
    const fired = await check(app, "device-key-weak");
    expect(fired.findings.map((f) => f.evidence.problem)).toContain("RSA key of 1024 bits (at least 2048 needed)");
    await app.pki.certificates.revoke(weak.serial, "keyCompromise", "test");
    expect(names((await check(app, "device-key-weak")).findings)).not.toContain("weak-device");

    expect(await check(app, "ca-key-weak")).toMatchObject({ status: "passed" });
    const weakCa = opensslCertificate(t.database.dataDir, ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"], "weak-ca");
    await app.store.db
      .insertInto("ca_certificates")
      .values({ serial: weakCa.serial, role: "issuing", key_type: "ec-p256", subject: "CN=weak-ca", certificate_pem: readFileSync(join(t.database.dataDir, "weak-ca.pem"), "utf8"), sealed_key: null, not_after: weakCa.notAfter, active: 0, created_at: new Date().toISOString(), key_location: null })
      .execute();
    const caFired = await check(app, "ca-key-weak");
    expect(caFired.findings).toMatchObject([{ resources: [{ kind: "ca", id: weakCa.serial }], evidence: { problem: "EC key on curve secp256k1 (P-256, P-384 or P-521 expected)" } }]);
    await app.store.db.deleteFrom("ca_certificates").where("serial", "=", weakCa.serial).execute();
    expect(await check(app, "ca-key-weak")).toMatchObject({ status: "passed" });
  });

  it("ca-certificate-expiring: fires as of a date inside the window before the issuing CA ends", async () => {
    expect(await check(app, "ca-certificate-expiring")).toMatchObject({ status: "passed" });
    const issuing = await app.ca.active("issuing");
    const fired = await check(app, "ca-certificate-expiring", Date.parse(issuing.notAfter) - 10 * DAY);
    expect(fired.findings.map((f) => f.resources[0]!.id)).toContain(issuing.serialHex);
  });

  it("ca-revoked-in-use: active device certificates whose issuing CA can no longer vouch for them (expired)", async () => {
    await app.devices.create({ id: "orphan" }, "test");
    await app.pki.certificates.issueWithGeneratedKey({ deviceId: "orphan", actor: "test" });
    expect(await check(app, "ca-revoked-in-use")).toMatchObject({ status: "passed" });
    const issuing = await app.ca.active("issuing");
    await app.store.db.updateTable("ca_certificates").set({ not_after: new Date(Date.now() - DAY).toISOString() }).where("serial", "=", issuing.serialHex).execute();
    try {
      const fired = await check(app, "ca-revoked-in-use");
      expect(fired.findings).toMatchObject([{ severity: "critical", resources: [{ kind: "ca", id: issuing.serialHex }], evidence: { problem: expect.stringContaining("expired") } }]);
    } finally {
      await app.store.db.updateTable("ca_certificates").set({ not_after: issuing.notAfter }).where("serial", "=", issuing.serialHex).execute();
    }
    expect(await check(app, "ca-revoked-in-use")).toMatchObject({ status: "passed" });
  });

  it("revoked-certificate-connected: a live session on a revoked certificate", async () => {
    await app.devices.create({ id: "zombie" }, "test");
    const cert = await app.pki.certificates.issueWithGeneratedKey({ deviceId: "zombie", actor: "test" });
    await app.audit.emit({ type: "device.connected", subject: "zombie", data: { session: "z-1", node: "node-z", serial: cert.serialHex, address: "192.0.2.9" } });
    await recorder.settled();
    expect(await check(app, "revoked-certificate-connected")).toMatchObject({ status: "passed" });
    await app.pki.certificates.revoke(cert.serialHex, "keyCompromise", "test");
    const fired = await check(app, "revoked-certificate-connected");
    expect(fired.findings).toMatchObject([{ severity: "critical", resources: expect.arrayContaining([{ kind: "device", id: "zombie" }, { kind: "certificate", id: cert.serialHex }]) }]);
    await app.audit.emit({ type: "device.disconnected", subject: "zombie", data: { session: "z-1", node: "node-z" } });
    await recorder.settled();
    expect(await check(app, "revoked-certificate-connected")).toMatchObject({ status: "passed" });
  });

  it("client-id-conflict: one client id live on two nodes, or taken over back and forth from two addresses", async () => {
    await app.devices.create({ id: "cloned" }, "test");
    await app.devices.create({ id: "roamer" }, "test");
    await app.audit.emit({ type: "device.connected", subject: "cloned", data: { session: "c-1", node: "node-1", address: "192.0.2.1" } });
    await app.audit.emit({ type: "device.connected", subject: "cloned", data: { session: "c-2", node: "node-2", address: "198.51.100.1" } });
    // A reconnect from the same address (a dropped link) is not a conflict.
    await app.audit.emit({ type: "device.connected", subject: "roamer", data: { session: "r-1", node: "node-1", address: "192.0.2.50" } });
    await app.audit.emit({ type: "device.disconnected", subject: "roamer", data: { session: "r-1", node: "node-1" } });
    await app.audit.emit({ type: "device.connected", subject: "roamer", data: { session: "r-2", node: "node-1", address: "192.0.2.50", replaced: { session: "r-1", address: "192.0.2.50" } } });
    await recorder.settled();
    const fired = await check(app, "client-id-conflict");
    expect(names(fired.findings)).toEqual(["cloned"]);
    expect(fired.findings[0]!.evidence).toMatchObject({ clientId: "cloned", liveSessions: 2 });
    await app.audit.emit({ type: "device.disconnected", subject: "cloned", data: { session: "c-1", node: "node-1" } });
    await recorder.settled();
    // Still one takeover recorded between the two addresses, but one is not yet a pattern.
    expect(await check(app, "client-id-conflict")).toMatchObject({ status: "passed" });
  });

  it("role-overly-permissive and role-misconfigured reuse policy lint over every role, assigned or not", async () => {
    expect(await check(app, "role-overly-permissive")).toMatchObject({ status: "passed" });
    await app.policy.createRole("firehose", [{ effect: "allow", action: "subscribe", resource: "#" }], "test");
    const fired = await check(app, "role-overly-permissive");
    expect(fired.findings).toMatchObject([{ severity: "high", resources: [{ kind: "role", id: "firehose" }], evidence: { code: "matches-everything" } }]);
    await app.policy.deleteRole("firehose", "test");
    expect(await check(app, "role-overly-permissive")).toMatchObject({ status: "passed" });

    expect(await check(app, "role-misconfigured")).toMatchObject({ status: "passed" });
    await app.policy.createRole("typo", [{ effect: "deny", action: "publish", resource: "device/${device.id}/telemetry/#" }], "test");
    expect((await check(app, "role-misconfigured")).findings).toMatchObject([{ resources: [{ kind: "role", id: "typo" }], evidence: { code: "deny-shadows-nothing" } }]);
    await app.policy.deleteRole("typo", "test");
    expect(await check(app, "role-misconfigured")).toMatchObject({ status: "passed" });
  });

  it("plaintext-listener-enabled and a disabled operator log follow the settings", async () => {
    expect(await check(app, "plaintext-listener-enabled")).toMatchObject({ status: "passed" });
    const plain = await withSettings({ "broker.mqttPlainPort": 18830, logLevel: "silent" });
    expect((await check(plain, "plaintext-listener-enabled")).findings).toMatchObject([{ resources: [{ kind: "listener", id: "mqtt-plain:18830" }] }]);
    expect((await check(plain, "audit-log-failing")).findings).toMatchObject([{ resources: [{ kind: "setting", id: "logLevel" }] }]);
    const informed = await withSettings({ logLevel: "info" });
    expect(await check(informed, "audit-log-failing")).toMatchObject({ status: "passed" });
  });

  it("device-never-seen: an active device never seen long after it was created; seen, it is quiet", async () => {
    await app.devices.create({ id: "ghost", status: "active" }, "test");
    await app.devices.create({ id: "regular", status: "active" }, "test");
    await app.devices.recordSeen([{ id: "regular", at: new Date().toISOString(), address: "192.0.2.33" }]);
    expect(names((await check(app, "device-never-seen")).findings)).not.toContain("ghost");
    const later = names((await check(app, "device-never-seen", Date.now() + 8 * DAY)).findings);
    expect(later).toContain("ghost");
    expect(later).not.toContain("regular");
  });

  it("kek-not-rotated: a KEK current for longer than posture.kekMaxAgeDays", async () => {
    expect(await check(app, "kek-not-rotated")).toMatchObject({ status: "passed" });
    expect((await check(app, "kek-not-rotated", Date.now() + 400 * DAY)).findings).toMatchObject([{ resources: [{ kind: "kek", id: "v1" }] }]);
  });

  it("scanner-open-findings: findings of the newest scan on a fleet address; a clean rescan is quiet", async () => {
    expect(await check(app, "scanner-open-findings")).toMatchObject({ status: "not-applicable" });
    const broker = await startAedesFixture();
    try {
      await app.devices.create({ id: "open-gateway", status: "active" }, "test");
      await app.devices.recordSeen([{ id: "open-gateway", at: new Date(Date.now() + 1000).toISOString(), address: "127.0.0.1" }]);
      const fast = { bannerWaitMs: 500, probeTimeoutMs: 1500, portTimeoutMs: 1000, mqttListenMs: 200 };
      await app.scans.run({ targets: ["127.0.0.1"], ports: String(broker.port), actor: "test", ...fast });
      const fired = await check(app, "scanner-open-findings");
      expect(new Set(names(fired.findings))).toEqual(new Set(["open-gateway"]));
      expect(fired.findings.map((f) => f.evidence.rule)).toContain("mqtt-plaintext");
      const port = broker.port;
      await broker.close();
      await app.scans.run({ targets: ["127.0.0.1"], ports: String(port), actor: "test", ...fast });
      expect(await check(app, "scanner-open-findings")).toMatchObject({ status: "passed" });
    } finally {
      await broker.close().catch(() => undefined);
    }
  });

  it("segmentation-stale: the compiled ruleset is missing or differs from what the policy compiles to", async () => {
    expect(await check(app, "segmentation-stale")).toMatchObject({ status: "not-applicable" });
    const policyFile = join(t.database.dataDir, "segments.yml");
    const compiledFile = join(t.database.dataDir, "segments.nft");
    writeFileSync(policyFile, readFileSync("examples/segmentation/network-segmentation.yml"));
    const configured = await withSettings({ "segmentation.policyFile": policyFile, "segmentation.compiledFile": compiledFile });
    expect((await check(configured, "segmentation-stale")).findings).toMatchObject([{ evidence: { problem: "the compiled ruleset does not exist" } }]);
    execFileSync(process.execPath, ["--import", "tsx", "src/cli/bin.ts", "segment", "compile", policyFile, "--target", "nftables", "--out", compiledFile], { stdio: "ignore" });
    expect(await check(configured, "segmentation-stale")).toMatchObject({ status: "passed" });
    writeFileSync(compiledFile, readFileSync(compiledFile, "utf8") + "\n# edited by hand\nflush ruleset\n");
    expect(await check(configured, "segmentation-stale")).toMatchObject({ status: "failed" });
  });

  it("group-setting checks are not applicable (never passed) until a group sets what they need", async () => {
    const run = await app.posture.run({ actor: "test" });
    for (const id of ["device-firmware-outdated", "device-silent", "device-outside-allowed-network"])
      expect(run.checks.find((c) => c.check === id)).toMatchObject({ status: "not-applicable", reason: expect.stringContaining("no device group sets") });
  });

  it("device-firmware-outdated: below the group's minimum security version, or never reported", async () => {
    await app.devices.create({ id: "fw-old", group: "meters", status: "active" }, "test");
    await app.devices.create({ id: "fw-new", group: "meters", status: "active" }, "test");
    await app.devices.create({ id: "fw-silent", group: "meters", status: "active" }, "test");
    await app.firmwareInventory.report("fw-old", { version: "1.0.0", securityVersion: 3 }, "sdk");
    await app.firmwareInventory.report("fw-new", { version: "2.0.0", securityVersion: 7 }, "sdk");
    await app.groups.set("meters", { minSecurityVersion: 5 }, "test");
    const fired = await check(app, "device-firmware-outdated");
    expect(new Map(fired.findings.map((f) => [names([f])[0], f.evidence.securityVersion]))).toEqual(
      new Map<string | undefined, unknown>([
        ["fw-old", 3],
        ["fw-silent", null],
      ]),
    );
    await app.firmwareInventory.report("fw-old", { version: "2.0.0", securityVersion: 7 }, "ota");
    await app.firmwareInventory.report("fw-silent", { version: "2.0.0", securityVersion: 5 }, "ota");
    expect(await check(app, "device-firmware-outdated")).toMatchObject({ status: "passed" });
  });

  it("device-silent and device-outside-allowed-network follow the group's window and CIDRs", async () => {
    await app.devices.create({ id: "field-1", group: "field", status: "active" }, "test");
    await app.devices.recordSeen([{ id: "field-1", at: new Date(Date.now() - 2 * 3_600_000).toISOString(), address: "203.0.113.7" }]);
    await app.groups.set("field", { silenceWindow: "1h", allowedCidrs: ["10.20.0.0/16"] }, "test");
    expect(names((await check(app, "device-silent")).findings)).toEqual(["field-1"]);
    expect((await check(app, "device-outside-allowed-network")).findings).toMatchObject([{ resources: [{ kind: "device", id: "field-1" }, { kind: "address", id: "203.0.113.7" }] }]);
    await app.devices.recordSeen([{ id: "field-1", at: new Date().toISOString(), address: "10.20.3.4" }]);
    expect(await check(app, "device-silent")).toMatchObject({ status: "passed" });
    expect(await check(app, "device-outside-allowed-network")).toMatchObject({ status: "passed" });
  });

  it("root-ca-key-online: fires while the root key is held here, quiet once it is offline", async () => {
    const root = await app.ca.active("root");
    expect((await check(app, "root-ca-key-online")).findings).toMatchObject([{ resources: [{ kind: "ca", id: root.serialHex }] }]);
    await app.ca.forgetRootKey("test");
    expect(await check(app, "root-ca-key-online")).toMatchObject({ status: "passed" });
  });

  it("audit-log-failing: a rewritten audit event breaks the chain (last: it leaves the log broken)", async () => {
    // The test installation logs nothing (logLevel silent), which the same check reports apart.
    expect((await check(app, "audit-log-failing")).findings.map((f) => f.resources[0]!.id)).toEqual(["logLevel"]);
    const first = await app.store.db.selectFrom("audit_events").select("seq").orderBy("seq").limit(1).executeTakeFirstOrThrow();
    await app.store.db.updateTable("audit_events").set({ actor: "someone-else" }).where("seq", "=", first.seq).execute();
    const fired = await check(app, "audit-log-failing");
    expect(fired.findings.find((f) => f.resources[0]!.id === "chain")).toMatchObject({ severity: "critical", resources: [{ kind: "audit-log", id: "chain" }], evidence: { firstBadSeq: Number(first.seq) } });
  });
});

function createPublicKeyPem(): string {
  return generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }).toString();
}
