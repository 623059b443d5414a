/**
 * Automatic renewal against a real `moat serve` with short device certificates (pki.certLifetime):
 * the device renews by itself, repeatedly, while it publishes QoS 1 telemetry and holds a subscription;
 * every message arrives and the subscription survives each move to a new certificate.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.js";
import { MoatDevice, type DeviceCertificate } from "../../src/device/index.js";
import { isMoatError } from "../../src/errors.js";
import { initialize } from "../../src/core.js";
import { tempDir } from "../helpers/temp.js";
import { startDeviceTestServer, type DeviceTestServer } from "./helpers.js";

const MONITOR_RULES = [
  { effect: "allow", action: "subscribe", resource: "devices/+/telemetry/#" },
  { effect: "allow", action: "receive", resource: "devices/+/telemetry/#" },
  { effect: "allow", action: "publish", resource: "devices/+/commands/#" },
] as const;

describe("device SDK: automatic renewal of short-lived certificates under load", () => {
  let s: DeviceTestServer;
  let monitor: MoatDevice;
  const seen = new Map<string, Set<string>>();

  beforeAll(async () => {
    s = await startDeviceTestServer({ "pki.certLifetime": "2m" });
    await s.app.policy.createRole("monitor", [...MONITOR_RULES], "test");
    await s.app.devices.create({ id: "monitor", role: "monitor" }, "test");
    const token = (await s.app.enrollmentTokens.create("monitor", 3_600_000, "test")).token;
    monitor = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "monitor", token, dir: s.deviceDir(), renewal: false });
    await monitor.connect();
    await monitor.subscribe("devices/+/telemetry/#", (topic, payload) => {
      const device = topic.split("/")[1]!;
      if (!seen.has(device)) seen.set(device, new Set());
      seen.get(device)!.add(payload.toString());
    });
  });

  afterAll(async () => {
    await monitor?.close();
    await s?.close();
  });

  it("pki.certLifetime sets the device certificate lifetime (here 2 minutes)", async () => {
    const token = await s.newDevice("short-1");
    const before = Date.now();
    const device = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "short-1", token, dir: s.deviceDir(), renewal: false });
    const lifetimeLeft = device.certificate.notAfter.getTime() - before;
    expect(lifetimeLeft).toBeGreaterThan(60_000);
    expect(lifetimeLeft).toBeLessThanOrEqual(121_000);
    await device.close();
  });

  it("renews by itself repeatedly while publishing QoS 1: no message lost, the subscription intact after every move", async () => {
    const token = await s.newDevice("rot-1");
    // The schedule is injected so the test needs no long wait: renew half a second after each certificate arrives.
    const device = await MoatDevice.enroll({
      server: s.server,
      ca: s.rootPem,
      deviceId: "rot-1",
      token,
      dir: s.deviceDir(),
      renewal: { schedule: () => new Date(Date.now() + 500) },
      backoff: { initialMs: 50, maxMs: 500 },
    });
    try {
      await device.connect();
      const commands: string[] = [];
      await device.subscribe("devices/rot-1/commands/#", (_topic, payload) => commands.push(payload.toString()));
      const renewals: DeviceCertificate[] = [];
      const threeRenewals = new Promise<void>((resolve) =>
        device.on("renewed", (certificate) => {
          renewals.push(certificate);
          if (renewals.length === 3) resolve();
        }),
      );
      // Publish without waiting for each PUBACK, so messages are in flight when a renewal moves the session.
      const sends: Promise<void>[] = [];
      let n = 0;
      const publisher = setInterval(() => sends.push(device.publish("devices/rot-1/telemetry/seq", String(n++), { qos: 1 })), 20);
      await threeRenewals;
      clearInterval(publisher);
      await Promise.all(sends);
      const sent = n;
      expect(sent).toBeGreaterThan(10);
      // Every message reached the monitor (QoS 1 may deliver twice, never zero times).
      await waitUntil(() => (seen.get("rot-1")?.size ?? 0) >= sent);
      expect([...seen.get("rot-1")!].map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: sent }, (_, i) => i));

      // Three distinct certificates, each superseding the one before; the device holds the last one.
      expect(new Set(renewals.map((r) => r.serial)).size).toBe(3);
      const records = await s.app.pki.certificates.list({ deviceId: "rot-1" });
      const current = records.filter((r) => r.supersededBy === null);
      expect(current.map((r) => r.serialHex)).toEqual([device.certificate.serial]);

      // The subscription survived every move.
      if (!device.connected) await new Promise<void>((resolve) => device.once("connected", () => resolve()));
      await monitor.publish("devices/rot-1/commands/after", "still here", { qos: 1 });
      await waitUntil(() => commands.length >= 1);
      expect(commands).toEqual(["still here"]);
    } finally {
      await device.close();
    }
  });

  it("pki.certLifetime is validated: not a duration, under 10 s or over pki.maxCertDays is CONFIG_INVALID", async () => {
    for (const [value, extra] of [["ten minutes", {}], ["5s", {}], ["2d", { "pki.maxCertDays": 1 }]] as const) {
      const dir = tempDir();
      try {
        const config = loadConfig({ env: {}, flags: { dataDir: dir.path, logLevel: "silent", "pki.certLifetime": value, ...extra } });
        const error = await initialize(config, { trustDomain: "test.moat", keyType: "ec-p256", hostnames: ["localhost"] })
          .then(async ({ app }) => {
            try {
              return app.pki;
            } finally {
              await app.close();
            }
          })
          .catch((e: unknown) => e);
        expect([value, isMoatError(error, "CONFIG_INVALID"), String((error as Error).message)]).toEqual([value, true, expect.stringContaining("pki.certLifetime")]);
      } catch (error) {
        // A value the config schema itself refuses (not a duration) fails in loadConfig, with the same code.
        expect([value, isMoatError(error, "CONFIG_INVALID"), String((error as Error).message)]).toEqual([value, true, expect.stringContaining("pki.certLifetime")]);
      } finally {
        dir.cleanup();
      }
    }
  });
});

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}
