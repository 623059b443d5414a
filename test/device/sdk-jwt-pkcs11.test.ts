/**
 * Devices without a client certificate on the wire: JWT mode (device-signed ES256 tokens over
 * server-authenticated TLS, a fresh token before each expires) with a file key and with a key made
 * inside a PKCS#11 token (SoftHSM), plus end-to-end sealed payloads and the OTA wiring of the object.
 */
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Keyring, PayloadOpener, PayloadSealer } from "../../src/crypto/index.js";
import { MoatDevice } from "../../src/device/index.js";
import { isMoatError } from "../../src/errors.js";
import { makeSoftHsm, SOFTHSM_MODULE, softHsmAvailable } from "../keys-softhsm.js";
import { tempDir } from "../helpers/temp.js";
import { startDeviceTestServer, type DeviceTestServer } from "./helpers.js";

const MONITOR_RULES = [
  { effect: "allow", action: "subscribe", resource: "devices/+/telemetry/#" },
  { effect: "allow", action: "receive", resource: "devices/+/telemetry/#" },
  { effect: "allow", action: "subscribe", resource: "devices/+/status" },
  { effect: "allow", action: "receive", resource: "devices/+/status" },
  { effect: "allow", action: "publish", resource: "devices/+/commands/#" },
  { effect: "allow", action: "publish", resource: "devices/+/ota" },
] as const;

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe("device SDK: JWT mode, PKCS#11 keys, end-to-end payloads and OTA wiring", () => {
  let s: DeviceTestServer;
  let monitor: MoatDevice;
  const received: { topic: string; payload: Buffer }[] = [];

  beforeAll(async () => {
    s = await startDeviceTestServer();
    await s.app.policy.createRole("monitor", [...MONITOR_RULES], "test");
    await s.app.devices.create({ id: "monitor", role: "monitor" }, "test");
    const token = (await s.app.enrollmentTokens.create("monitor", 3_600_000, "test")).token;
    monitor = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "monitor", token, dir: s.deviceDir(), renewal: false });
    await monitor.connect();
    await monitor.subscribe("devices/+/telemetry/#", (topic, payload) => received.push({ topic, payload }));
    await monitor.subscribe("devices/+/status", (topic, payload) => received.push({ topic, payload }));
  });

  afterAll(async () => {
    await monitor?.close();
    await s?.close();
  });

  /** The login methods of the device's `device.connected` events in the audit log (waits for the first). */
  async function loginMethods(deviceId: string): Promise<string[]> {
    for (;;) {
      const rows = await s.app.store.db.selectFrom("audit_events").select(["data"]).where("type", "=", "device.connected").where("subject", "=", deviceId).execute();
      if (rows.length > 0) return [...new Set(rows.map((row) => (JSON.parse(String(row.data)) as { method: string }).method))];
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it("JWT mode: logs in with device-signed ES256 tokens, moves to a fresh token before expiry, keeps its subscription", async () => {
    const token = await s.newDevice("jwt-1");
    const device = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "jwt-1", token, dir: s.deviceDir(), auth: "jwt", jwtLifetimeSeconds: 3, renewal: false });
    try {
      expect(device.auth).toBe("jwt");
      await device.connect();
      const commands: string[] = [];
      await device.subscribe("devices/jwt-1/commands/#", (_topic, payload) => commands.push(payload.toString()));
      // The broker's connection event names the login method: a device-key token, not the certificate.
      expect(await loginMethods("jwt-1")).toEqual(["jwt-key"]);
      // A 3-second token is replaced after 2 s: wait for the session to move, then use it.
      await new Promise<void>((resolve) => device.once("disconnected", () => resolve()));
      await new Promise<void>((resolve) => device.once("connected", () => resolve()));
      await device.publish("devices/jwt-1/telemetry/t", "fresh token", { qos: 1 });
      await waitUntil(() => received.some((m) => m.topic === "devices/jwt-1/telemetry/t"));
      await monitor.publish("devices/jwt-1/commands/x", "still subscribed", { qos: 1 });
      await waitUntil(() => commands.length === 1);
      expect(commands).toEqual(["still subscribed"]);
    } finally {
      await device.close();
    }
  });

  it.runIf(softHsmAvailable())("a PKCS#11 key: made in the token (non-extractable), enrolls over EST, logs in with JWTs signed in the token; the folder holds no key", async () => {
    const hsm = tempDir("moat-device-hsm-");
    try {
      makeSoftHsm(hsm.path, [{ label: "device-token", pin: "4321" }]);
      const pkcs11 = { module: SOFTHSM_MODULE, tokenLabel: "device-token", pin: "4321", keyLabel: "moat-device-hsm-1" };
      const token = await s.newDevice("hsm-1");
      const dir = s.deviceDir();
      const device = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "hsm-1", token, dir, pkcs11 });
      const serial = device.certificate.serial;
      try {
        expect(device.auth).toBe("jwt");
        expect(readdirSync(dir).sort()).toEqual(["ca.pem", "cert-1.pem", "device.json"]);
        expect(JSON.parse(readFileSync(join(dir, "device.json"), "utf8")).key).toEqual({ kind: "pkcs11", module: SOFTHSM_MODULE, tokenLabel: "device-token", keyLabel: "moat-device-hsm-1" });
        expect(readFileSync(join(dir, "device.json"), "utf8")).not.toContain("4321");
        await device.connect();
        expect(await loginMethods("hsm-1")).toEqual(["jwt-key"]);
        await device.publish("devices/hsm-1/telemetry/t", "signed in the token", { qos: 1 });
        await waitUntil(() => received.some((m) => m.topic === "devices/hsm-1/telemetry/t"));
        // The token cannot authenticate EST re-enrollment over TLS: renew() says so instead of pretending.
        expect(isMoatError(await device.renew().catch((e: unknown) => e), "DEVICE_OPTION_INVALID")).toBe(true);
      } finally {
        await device.close();
      }
      // The private key is a token object the token will not hand out.
      const { Pkcs11Token } = await import("../../src/keys/pkcs11-token.js");
      const session = Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: "device-token", pin: () => "4321" });
      try {
        const [privateKey] = session.find("private", "moat-device-hsm-1");
        expect(session.protection(privateKey!.handle)).toEqual({ extractable: false, sensitive: true });
      } finally {
        session.close();
      }
      // Opening needs the token PIN; with it the device boots from the key in the token.
      expect(isMoatError(await MoatDevice.open({ dir }).catch((e: unknown) => e), "DEVICE_SECRET_INVALID")).toBe(true);
      const reopened = await MoatDevice.open({ dir, pkcs11Pin: "4321" });
      expect(reopened.certificate.serial).toBe(serial);
      await reopened.connect();
      await reopened.publish("devices/hsm-1/telemetry/again", "after reboot", { qos: 1 });
      await reopened.close();
      // A second device key under the same label is refused, never overwritten.
      const token2 = await s.newDevice("hsm-2");
      const clash = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "hsm-2", token: token2, dir: s.deviceDir(), pkcs11 }).catch((e: unknown) => e);
      expect(isMoatError(clash, "DEVICE_STATE_EXISTS")).toBe(true);
    } finally {
      hsm.cleanup();
    }
  });

  it("dev.e2e seals own-topic payloads as COSE_Encrypt0 the broker only relays; an application with the key opens them, and the device opens its commands", async () => {
    const token = await s.newDevice("e2e-1");
    const device = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "e2e-1", token, dir: s.deviceDir(), renewal: false });
    try {
      await device.connect();
      const key = randomBytes(32);
      device.e2e.addKey("k1", key);
      await device.e2e.publish("devices/e2e-1/telemetry/secret", "22.5 C", { qos: 1 });
      await waitUntil(() => received.some((m) => m.topic === "devices/e2e-1/telemetry/secret"));
      const wire = received.find((m) => m.topic === "devices/e2e-1/telemetry/secret")!.payload;
      expect(wire.includes(Buffer.from("22.5 C"))).toBe(false);
      // The application side opens it with the crypto domain's own opener, bound to the topic.
      const application = new PayloadOpener(new Keyring().add("k1", key));
      expect(application.open("devices/e2e-1/telemetry/secret", wire).plaintext.toString()).toBe("22.5 C");
      expect(() => application.open("devices/e2e-1/telemetry/other", wire)).toThrow();

      // Commands sealed by the application reach the handler as plaintext; a tampered one never does.
      const opened: string[] = [];
      const failures: unknown[] = [];
      device.on("handlerError", (error) => failures.push(error));
      await device.e2e.subscribe("devices/e2e-1/commands/#", (_topic, plaintext) => opened.push(plaintext.toString()));
      const sealer = new PayloadSealer(new Keyring().add("k1", key), 1);
      await monitor.publish("devices/e2e-1/commands/set", sealer.seal("devices/e2e-1/commands/set", Buffer.from("target=21")), { qos: 1 });
      const tampered = sealer.seal("devices/e2e-1/commands/set", Buffer.from("target=99"));
      tampered[tampered.length - 1]! ^= 0xff;
      await monitor.publish("devices/e2e-1/commands/set", tampered, { qos: 1 });
      await waitUntil(() => opened.length === 1 && failures.length === 1);
      expect(opened).toEqual(["target=21"]);
      expect(isMoatError(failures[0])).toBe(true);
      // Only the device's own topics.
      expect(isMoatError(thrown(() => device.e2e.seal("devices/other/telemetry/t", "x")), "DEVICE_OPTION_INVALID")).toBe(true);
    } finally {
      await device.close();
    }
  });

  it("dev.ota: offers on devices/<id>/ota run the OTA client, whose reports go to devices/<id>/status; the inventory is reported there too", async () => {
    const token = await s.newDevice("ota-1");
    const dir = s.deviceDir();
    const device = await MoatDevice.enroll({ server: s.server, ca: s.rootPem, deviceId: "ota-1", token, dir, renewal: false });
    const work = tempDir("moat-device-ota-");
    try {
      await device.connect();
      expect(device.ota.verifyFirmware).toBeTypeOf("function");
      await device.ota.reportInventory({ version: "1.0.0", securityVersion: 1 });
      // No TUF root pinned on this device: the update must fail, and say so on the status topic.
      const { FileSecurityCounter } = await import("../../src/device/index.js");
      const client = device.ota.client({
        hardwareId: "board-a",
        metadataDir: join(work.path, "tuf"),
        slotsDir: join(work.path, "slots"),
        trustedRoots: [],
        counter: new FileSecurityCounter(join(work.path, "counter.json")),
      });
      const outcomes: string[] = [];
      await device.ota.listen(client, (outcome) => outcomes.push(outcome.status));
      await monitor.publish("devices/ota-1/ota", JSON.stringify({ type: "ota.update", campaignId: "c1", imageTarget: "fw/app.bin", manifestTarget: "fw/app.manifest" }), { qos: 1 });
      await waitUntil(() => outcomes.length === 1);
      expect(outcomes).toEqual(["failed"]);
      await waitUntil(() => received.filter((m) => m.topic === "devices/ota-1/status").length >= 2);
      const reports = received.filter((m) => m.topic === "devices/ota-1/status").map((m) => JSON.parse(m.payload.toString()));
      expect(reports[0]).toEqual({ type: "firmware.inventory", version: "1.0.0", securityVersion: 1 });
      expect(reports.slice(1)).toEqual(expect.arrayContaining([expect.objectContaining({ type: "ota.status", campaignId: "c1", status: expect.stringMatching(/^failed:/) })]));
    } finally {
      await device.close();
      work.cleanup();
    }
  });
});
