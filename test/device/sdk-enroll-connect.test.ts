/**
 * The device SDK (moat/device) against a real `moat serve`: GET /v1/info, EST enrollment with a
 * one-time token, the device folder, mTLS MQTT (publish, subscribe granted and refused) and renewal
 * by EST simplereenroll with the session moving to the new certificate.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MoatDevice } from "../../src/device/index.js";
import { fetchServerInfo } from "../../src/device/server-client.js";
import { isMoatError } from "../../src/errors.js";
import { startDeviceTestServer, type DeviceTestServer } from "./helpers.js";

/** A role for an observer device: it sees every device's telemetry and may send commands. */
const MONITOR_RULES = [
  { effect: "allow", action: "subscribe", resource: "devices/+/telemetry/#" },
  { effect: "allow", action: "receive", resource: "devices/+/telemetry/#" },
  { effect: "allow", action: "publish", resource: "devices/+/commands/#" },
] as const;

/** Messages a handler received, with a way to wait for the n-th one. */
function inbox(): { handler: (topic: string, payload: Buffer) => void; received: { topic: string; payload: string }[]; waitFor(count: number): Promise<void> } {
  const received: { topic: string; payload: string }[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  return {
    received,
    handler: (topic, payload) => {
      received.push({ topic, payload: payload.toString() });
      for (const waiter of waiters.filter((w) => received.length >= w.count)) waiter.resolve();
    },
    waitFor: (count) => (received.length >= count ? Promise.resolve() : new Promise((resolve) => waiters.push({ count, resolve }))),
  };
}

describe("device SDK: enrollment, mTLS MQTT and renewal against moat serve", () => {
  let s: DeviceTestServer;
  let monitor: MoatDevice;
  const telemetry = inbox();

  beforeAll(async () => {
    s = await startDeviceTestServer();
    await s.app.policy.createRole("monitor", [...MONITOR_RULES], "test");
    await s.app.devices.create({ id: "monitor", role: "monitor" }, "test");
    const token = (await s.app.enrollmentTokens.create("monitor", 3_600_000, "test")).token;
    monitor = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "monitor", token, dir: s.deviceDir() });
    await monitor.connect();
    await monitor.subscribe("devices/+/telemetry/#", telemetry.handler);
  });

  afterAll(async () => {
    await monitor?.close();
    await s?.close();
  });

  it("GET /v1/info advertises the EST and MQTT endpoints, the trust domain and the version, without a token", async () => {
    const info = await fetchServerInfo(s.server, s.rootPem);
    expect(info).toEqual({ estUrl: `${s.server}/.well-known/est`, mqttUrl: s.mqttUrl, trustDomain: "test.moat", version: expect.stringMatching(/^\d+\.\d+\.\d+/), jwtAudience: "moat-mqtt" });
  });

  it("enrolls over EST with a one-time token: P-256 key made on the device, stored 0600 in a 0700 folder", async () => {
    const token = await s.newDevice("sensor-1");
    const dir = s.deviceDir();
    const device = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "sensor-1", token, dir });
    try {
      const files = readdirSync(dir).sort();
      expect(files).toEqual(["ca.pem", "cert-1.pem", "device.json", "key-1.pem"]);
      expect(statSync(dir).mode & 0o777).toBe(0o700);
      expect(statSync(join(dir, "key-1.pem")).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, "device.json")).mode & 0o777).toBe(0o600);
      // The key is P-256 and the server's certificate is for exactly it (openssl reads both).
      const keyText = execFileSync("openssl", ["pkey", "-in", join(dir, "key-1.pem"), "-noout", "-text"]).toString();
      expect(keyText).toContain("NIST CURVE: P-256");
      const certPub = execFileSync("openssl", ["x509", "-in", join(dir, "cert-1.pem"), "-noout", "-pubkey"]).toString();
      const keyPub = execFileSync("openssl", ["pkey", "-in", join(dir, "key-1.pem"), "-pubout"]).toString();
      expect(certPub).toBe(keyPub);
      // The certificate is the one the server recorded for the device; the device is active now.
      const records = await s.app.pki.certificates.list({ deviceId: "sensor-1" });
      expect(records.map((r) => r.serialHex)).toEqual([device.certificate.serial]);
      expect((await s.app.devices.get("sensor-1")).status).toBe("active");
      expect(device.certificate.notAfter.getTime()).toBeGreaterThan(Date.now());
      const state = JSON.parse(readFileSync(join(dir, "device.json"), "utf8"));
      expect(state).toMatchObject({ deviceId: "sensor-1", server: s.server, estUrl: `${s.server}/.well-known/est`, mqttUrl: s.mqttUrl, trustDomain: "test.moat", generation: 1, key: { kind: "file", encrypted: false } });
      // The private key never appears in what the device stored for the server to see, nor in the state file.
      expect(readFileSync(join(dir, "device.json"), "utf8")).not.toContain("PRIVATE KEY");
    } finally {
      await device.close();
    }
  });

  it("a refused enrollment (token already used) is DEVICE_ENROLL_REFUSED with the server's code, and leaves no key behind", async () => {
    const token = await s.newDevice("sensor-2");
    const first = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "sensor-2", token, dir: s.deviceDir() });
    await first.close();
    const dir = s.deviceDir();
    const error = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "sensor-2", token, dir }).catch((e: unknown) => e);
    expect(isMoatError(error, "DEVICE_ENROLL_REFUSED")).toBe(true);
    expect((error as { detail: { serverCode: string } }).detail.serverCode).toBe("PKI_ENROLL_TOKEN_USED");
    expect(readdirSync(dir)).toEqual([]);
    // Enrolling into a folder that already holds a device is refused before anything is sent.
    const again = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "sensor-2", token: "x", dir: first["dir"].path }).catch((e: unknown) => e);
    expect(isMoatError(again, "DEVICE_STATE_EXISTS")).toBe(true);
  });

  it("a server whose certificate does not verify against the trust anchor is DEVICE_SERVER_UNTRUSTED", async () => {
    const otherRoot = execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null", "-subj", "/CN=other", "-days", "1"], {
      stdio: ["ignore", "pipe", "ignore"],
    }).toString();
    const error = await MoatDevice.enroll({ server: s.server, ca: otherRoot, deviceId: "sensor-x", token: "t", dir: s.deviceDir() }).catch((e: unknown) => e);
    expect(isMoatError(error, "DEVICE_SERVER_UNTRUSTED")).toBe(true);
  });

  it("with a device secret the key file is encrypted PKCS#8 that openssl opens with the secret; open() needs the secret", async () => {
    const token = await s.newDevice("sensor-3");
    const dir = s.deviceDir();
    const secret = "correct horse battery staple";
    const device = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "sensor-3", token, dir, secret });
    const serial = device.certificate.serial;
    await device.close();
    const pem = readFileSync(join(dir, "key-1.pem"), "utf8");
    expect(pem).toContain("BEGIN ENCRYPTED PRIVATE KEY");
    const passFile = join(dir, "..", "pass.txt");
    writeFileSync(passFile, secret, { mode: 0o600 });
    expect(execFileSync("openssl", ["pkey", "-in", join(dir, "key-1.pem"), "-passin", `file:${passFile}`, "-noout", "-text"]).toString()).toContain("P-256");
    for (const attempt of [undefined, "wrong secret"]) {
      const error = await MoatDevice.open({ dir, ...(attempt ? { secret: attempt } : {}) }).catch((e: unknown) => e);
      expect(isMoatError(error, "DEVICE_SECRET_INVALID")).toBe(true);
    }
    const reopened = await MoatDevice.open({ dir, secret });
    expect(reopened.certificate.serial).toBe(serial);
    await reopened.close();
  });

  it("connects over mTLS with the advertised MQTT URL, publishes QoS 1, and subscribes: granted ones deliver, a refused one rejects and the session stays", async () => {
    const token = await s.newDevice("sensor-4");
    const device = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "sensor-4", token, dir: s.deviceDir() });
    try {
      await device.connect();
      expect(device.connected).toBe(true);
      const before = telemetry.received.length;
      await device.publish("devices/sensor-4/telemetry/temp", "21.5", { qos: 1 });
      await device.publish("devices/sensor-4/telemetry/raw", new Uint8Array([1, 2, 3]), { qos: 1 });
      await telemetry.waitFor(before + 2);
      expect(telemetry.received.slice(before)).toEqual([
        { topic: "devices/sensor-4/telemetry/temp", payload: "21.5" },
        { topic: "devices/sensor-4/telemetry/raw", payload: "\x01\x02\x03" },
      ]);

      const commands = inbox();
      await device.subscribe("devices/sensor-4/commands/#", commands.handler);
      await monitor.publish("devices/sensor-4/commands/reboot", "now", { qos: 1 });
      await commands.waitFor(1);
      expect(commands.received).toEqual([{ topic: "devices/sensor-4/commands/reboot", payload: "now" }]);

      const refused = await device.subscribe("devices/sensor-1/commands/#", () => {}).catch((e: unknown) => e);
      expect(isMoatError(refused, "DEVICE_SUBSCRIBE_REFUSED")).toBe(true);
      expect(device.connected).toBe(true);
      await device.publish("devices/sensor-4/telemetry/after-refusal", "ok", { qos: 1 });
    } finally {
      await device.close();
    }
    const closed = await device.publish("devices/sensor-4/telemetry/t", "x").catch((e: unknown) => e);
    expect(isMoatError(closed, "DEVICE_CLOSED")).toBe(true);
  });

  it("renew() re-enrolls over EST with a new key; the live session moves to the new certificate with its subscription; open() boots with it", async () => {
    const token = await s.newDevice("sensor-5");
    const dir = s.deviceDir();
    const device = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "sensor-5", token, dir, renewal: false });
    let renewed: string;
    try {
      await device.connect();
      const commands = inbox();
      await device.subscribe("devices/sensor-5/commands/#", commands.handler);
      const old = device.certificate.serial;
      const oldKey = readFileSync(join(dir, "key-1.pem"), "utf8");
      const reconnected = new Promise<void>((resolve) => device.once("connected", () => resolve()));
      const certificate = await device.renew();
      renewed = certificate.serial;
      expect(renewed).not.toBe(old);
      expect(device.certificate.serial).toBe(renewed);
      // The server superseded the old certificate; the new one is current.
      const records = await s.app.pki.certificates.list({ deviceId: "sensor-5" });
      expect(records.find((r) => r.serialHex === old)?.supersededBy).toBe(renewed);
      // The folder holds only the new generation, with a new key.
      expect(readdirSync(dir).sort()).toEqual(["ca.pem", "cert-2.pem", "device.json", "key-2.pem"]);
      expect(readFileSync(join(dir, "key-2.pem"), "utf8")).not.toBe(oldKey);
      await reconnected;
      // The subscription came along: a command sent after the move arrives.
      await monitor.publish("devices/sensor-5/commands/ping", "1", { qos: 1 });
      await commands.waitFor(1);
      expect(commands.received[0]).toEqual({ topic: "devices/sensor-5/commands/ping", payload: "1" });
      const before = telemetry.received.length;
      await device.publish("devices/sensor-5/telemetry/after-renewal", "ok", { qos: 1 });
      await telemetry.waitFor(before + 1);
    } finally {
      await device.close();
    }
    const reopened = await MoatDevice.open({ dir });
    expect(reopened.certificate.serial).toBe(renewed);
    await reopened.connect();
    await reopened.publish("devices/sensor-5/telemetry/rebooted", "ok", { qos: 1 });
    await reopened.close();
  });
});
