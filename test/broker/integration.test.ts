/**
 * The broker inside `moat serve` (startServers) on a real installation: devices from the registry,
 * certificates from Moat's PKI, events in the audit log, and changes made by a separate `moat` CLI
 * process on the same SQLite data dir closing live sessions through the change feed.
 */
import { spawn } from "node:child_process";
import { X509Certificate, createPrivateKey, generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SignJWT } from "jose";
import mqtt, { type MqttClient } from "mqtt";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/core.js";
import { startMqttBroker } from "../../src/serve.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { buildCsr } from "../pki-fixture.js";
import { freePort } from "../../src/lib/free-port.js";


/** Runs the moat CLI as its own process (same data dir), without blocking this process's event loop. */
function moatCli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/bin.ts", ...args], { cwd: process.cwd(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

describe("broker in moat serve, driven by the real registry, PKI and change feed", () => {
  let t: TestApp;
  let app: App;
  let mqttNode: Awaited<ReturnType<typeof startMqttBroker>>;
  let mqttPort: number;
  let chain: string;

  async function deviceWithCert(id: string): Promise<{ cert: string; key: string; serial: string }> {
    await app.devices.create({ id }, "test");
    const issued = await app.pki.certificates.issueWithGeneratedKey({ deviceId: id, actor: "test" });
    const key = createPrivateKey({ key: issued.privateKeyPkcs8Der, format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }).toString();
    return { cert: issued.certificatePem, key, serial: issued.serialHex };
  }

  function connect(id: string, material: { cert: string; key: string }): Promise<MqttClient> {
    return mqtt.connectAsync(`mqtts://localhost:${mqttPort}`, { ca: chain, cert: material.cert, key: material.key, clientId: id, protocolVersion: 4, reconnectPeriod: 0, rejectUnauthorized: true });
  }

  const closed = (client: MqttClient) => new Promise<void>((resolve) => client.once("close", () => resolve()));

  beforeAll(async () => {
    mqttPort = await freePort();
    t = await createTestApp("sqlite", { "broker.mqttPort": mqttPort, apiPort: 0, pkiPort: 0 });
    app = t.app;
    chain = await app.ca.chainPem();
    mqttNode = await startMqttBroker(app, pino({ level: "silent" }));
    app.metricsSources.push(() => mqttNode.broker.metrics.registry.metrics());
  });

  afterAll(async () => {
    await mqttNode?.close();
    await t?.cleanup();
  });

  it("accepts a device with a Moat-issued certificate, enforces its role and records the connection", async () => {
    const material = await deviceWithCert("int-1");
    const client = await connect("int-1", material);
    await client.publishAsync("devices/int-1/telemetry/temp", "20", { qos: 1 });
    const granted = await client.subscribeAsync("devices/int-1/commands/#", { qos: 1 });
    expect(granted[0]!.qos).toBe(1);
    await client.endAsync();
    const events = await app.audit.list({ subject: "int-1" });
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(["device.connected"]));
    expect(events.find((e) => e.type === "device.connected")?.data).toMatchObject({ method: "mtls", serial: expect.any(String) });
  });

  it("closes a live session when `moat device suspend` runs in another process", async () => {
    const material = await deviceWithCert("int-2");
    const client = await connect("int-2", material);
    const gone = closed(client);
    const result = await moatCli(["device", "suspend", "int-2", ...t.cliArgs]);
    expect(result.status, result.stderr).toBe(0);
    await gone;
    const disconnected = (await app.audit.list({ subject: "int-2", type: "device.disconnected" }))[0];
    expect(disconnected?.data).toMatchObject({ reason: "device_suspended" });
    // And it cannot come back while suspended.
    await expect(connect("int-2", material)).rejects.toThrow(/not authori[sz]ed/i);
  });

  it("closes a live session when `moat cert revoke` runs in another process", async () => {
    const material = await deviceWithCert("int-3");
    const client = await connect("int-3", material);
    const gone = closed(client);
    const result = await moatCli(["cert", "revoke", material.serial, "--reason", "keyCompromise", ...t.cliArgs]);
    expect(result.status, result.stderr).toBe(0);
    await gone;
    const disconnected = (await app.audit.list({ subject: "int-3", type: "device.disconnected" }))[0];
    expect(disconnected?.data).toMatchObject({ reason: "cert_revoked" });
    await expect(connect("int-3", material)).rejects.toThrow(/not authori[sz]ed/i);
    const failed = await app.audit.list({ subject: "int-3", type: "auth.failed" });
    expect(failed[0]?.data).toMatchObject({ reason: "cert_revoked" });
  });

  it("accepts tokens made with credentials from `moat device secret rotate` and `moat device key add`, and ends them on rotation", async () => {
    await app.devices.create({ id: "int-4", status: "active" }, "test");
    const rotated = await moatCli(["device", "secret", "rotate", "int-4", "--json", ...t.cliArgs]);
    expect(rotated.status, rotated.stderr).toBe(0);
    const secret = Buffer.from((JSON.parse(rotated.stdout) as { secret: string }).secret, "base64url");
    const now = Math.floor(Date.now() / 1000);
    const hs = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("int-4").setAudience("moat-mqtt").setIssuedAt(now).setExpirationTime(now + 600).sign(secret);
    const viaSecret = await mqtt.connectAsync(`mqtts://localhost:${mqttPort}`, { ca: chain, clientId: "int-4", username: "int-4", password: hs, protocolVersion: 4, reconnectPeriod: 0 });
    await viaSecret.publishAsync("devices/int-4/telemetry/t", "1", { qos: 1 });

    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const pubFile = join(t.database.dataDir, "int-4.pub");
    writeFileSync(pubFile, pair.publicKey.export({ format: "pem", type: "spki" }));
    const added = await moatCli(["device", "key", "add", "int-4", "--pubkey", pubFile, ...t.cliArgs]);
    expect(added.stdout).toMatch(/^key:[0-9a-f]{16}$/m);
    const es = await new SignJWT({}).setProtectedHeader({ alg: "ES256" }).setSubject("int-4").setAudience("moat-mqtt").setIssuedAt(now).setExpirationTime(now + 600).sign(pair.privateKey);
    // Same client id: this session takes over the secret-based one [MQTT-3.1.4-2].
    const gone = closed(viaSecret);
    const viaKey = await mqtt.connectAsync(`mqtts://localhost:${mqttPort}`, { ca: chain, clientId: "int-4", username: "int-4", password: es, protocolVersion: 4, reconnectPeriod: 0 });
    await gone;
    await viaKey.endAsync();

    // A second rotation with no grace ends the old secret at once: its token is refused, and says why.
    const again = await moatCli(["device", "secret", "rotate", "int-4", "--grace-seconds", "0", ...t.cliArgs]);
    expect(again.status, again.stderr).toBe(0);
    await expect(mqtt.connectAsync(`mqtts://localhost:${mqttPort}`, { ca: chain, clientId: "int-4", username: "int-4", password: hs, protocolVersion: 4, reconnectPeriod: 0 })).rejects.toThrow(/bad user ?name or password/i);
    const failed = await app.audit.list({ subject: "int-4", type: "auth.failed" });
    expect(failed.map((e) => e.data.reason)).toContain("token_secret_grace_expired");
  });

  it("a certificate replaced by re-enrollment works on the broker until its grace ends, as OCSP and the CRL say, then nowhere", async () => {
    const old = await deviceWithCert("int-9");
    const next = buildCsr();
    const renewed = await app.pki.enrollment.reenroll(Buffer.from(new X509Certificate(old.cert).raw), next.der);
    const renewedMaterial = { cert: renewed.certificatePem, key: next.privateKey.export({ format: "pem", type: "pkcs8" }).toString() };
    // Inside the grace period: not revoked anywhere, and the broker accepts it.
    expect(await app.pki.certificates.revokedSerials()).not.toContain(old.serial);
    const during = await connect("int-9", old);
    expect(during.connected).toBe(true);
    // The grace ends: revoked with reason superseded, and the broker closes and refuses it.
    await app.store.db.updateTable("certificates").set({ revoke_after: new Date(Date.now() - 1000).toISOString() }).where("serial", "=", old.serial).execute();
    const gone = closed(during);
    expect((await app.pki.tick()).revoked).toBe(1);
    expect(await app.pki.certificates.get(old.serial)).toMatchObject({ status: "revoked", revocationReason: "superseded" });
    await gone;
    await expect(connect("int-9", old)).rejects.toThrow();
    const client = await connect("int-9", renewedMaterial);
    expect(client.connected).toBe(true);
    await client.endAsync();
  });

  it("serves the broker's metrics through the app's metrics sources", async () => {
    const text = (await Promise.all(app.metricsSources.map((source) => source()))).join("\n");
    expect(text).toMatch(/^moat_mqtt_connects_total\{method="mtls"\} [1-9]/m);
    expect(text).toMatch(/^moat_mqtt_sessions_closed_total\{cause="device_suspended"\} 1$/m);
    expect(text).toMatch(/^# TYPE moat_mqtt_enforcement_seconds histogram$/m);
  });
});
