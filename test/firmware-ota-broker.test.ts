/**
 * OTA campaigns over Moat's own MQTT broker, as `moat serve` wires them (startMqttBroker): offers go
 * out through the broker's server-side publish on devices/{id}/ota, and device reports on
 * devices/{id}/status come back through its device-message hook into the campaign. The devices are
 * MQTT.js clients with certificates from Moat's PKI over mTLS, under the built-in roles.
 */
import { createPrivateKey } from "node:crypto";
import mqtt, { type MqttClient } from "mqtt";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeviceMessage } from "../src/broker/index.js";
import { encodeOtaMessage, otaTopic, serializeManifest, statusTopic, type OtaMessage } from "../src/firmware/index.js";
import { createApp, type App } from "../src/core.js";
import { startMqttBroker } from "../src/serve.js";
import { createTestApp, type TestApp } from "./helpers/app.js";
import { tempDir } from "./helpers/temp.js";
import { writeImage } from "./firmware-fixtures.js";

/** A device on the broker: its client and every message it received, with a way to wait for the next ones. */
interface SimDevice {
  id: string;
  client: MqttClient;
  received: { topic: string; message: OtaMessage }[];
  nextMessage(): Promise<OtaMessage>;
}

describe("OTA campaign over Moat's own broker", () => {
  let t: TestApp;
  let app: App;
  let node: Awaited<ReturnType<typeof startMqttBroker>>;
  let chain: string;
  const devices: SimDevice[] = [];
  const dir = tempDir("moat-ota-broker-");

  beforeAll(async () => {
    t = await createTestApp("sqlite", { "broker.mqttPort": 0, apiPort: 0, pkiPort: 0 });
    app = t.app;
    chain = await app.ca.chainPem();
    node = await startMqttBroker(app, pino({ level: "silent" }));
  });

  afterAll(async () => {
    await Promise.all(devices.map((d) => d.client.endAsync(true)));
    await node?.close();
    await t?.cleanup();
    dir.cleanup();
  });

  /** Registers a device in a group, issues it a certificate through the PKI (which activates it) and connects it over mTLS. */
  async function connectDevice(id: string, group: string): Promise<SimDevice> {
    await app.devices.create({ id, group }, "test");
    const issued = await app.pki.certificates.issueWithGeneratedKey({ deviceId: id, actor: "test" });
    const key = createPrivateKey({ key: issued.privateKeyPkcs8Der, format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }).toString();
    const client = await mqtt.connectAsync(`mqtts://localhost:${node.broker.ports.tls}`, {
      ca: chain,
      cert: issued.certificatePem,
      key,
      clientId: id,
      protocolVersion: 4,
      reconnectPeriod: 0,
      rejectUnauthorized: true,
    });
    const waiting: ((message: OtaMessage) => void)[] = [];
    const device: SimDevice = {
      id,
      client,
      received: [],
      nextMessage: () => new Promise((resolve) => waiting.push(resolve)),
    };
    client.on("message", (topic, payload) => {
      const message = JSON.parse(payload.toString()) as OtaMessage;
      device.received.push({ topic, message });
      waiting.shift()?.(message);
    });
    devices.push(device);
    return device;
  }

  async function report(device: SimDevice, campaignId: string, ...statuses: string[]): Promise<void> {
    for (const status of statuses) await device.client.publishAsync(statusTopic(device.id), encodeOtaMessage({ type: "ota.status", campaignId, status }), { qos: 1 });
  }

  async function waitForCampaign(id: string, done: (status: string) => boolean): Promise<Awaited<ReturnType<App["firmware"]["campaigns"]["get"]>>> {
    for (;;) {
      const campaign = await app.firmware.campaigns.get(id);
      if (done(campaign.status)) return campaign;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it("tells the first stage over the broker, advances on their reports, and tells nobody outside the group", async () => {
    const field = await Promise.all(["f-0", "f-1", "f-2", "f-3"].map((id) => connectDevice(id, "field")));
    const outsider = await connectDevice("o-0", "other");
    // The built-in device role lets each device subscribe to its own OTA topic (SUBACK QoS 1, not 0x80).
    for (const device of [...field, outsider]) expect((await device.client.subscribeAsync(otaTopic(device.id), { qos: 1 }))[0]!.qos).toBe(1);

    const intake: DeviceMessage[] = [];
    const stopWatching = node.broker.onDeviceMessage((message) => intake.push(message));

    await app.firmware.keys.generateSigningKey({ name: "field", actor: "test" });
    await app.firmware.tuf.init({ actor: "test" });
    const image = writeImage(dir.path, "fw.bin", 4096);
    const manifest = serializeManifest(await app.firmware.keys.signImage({ image, actor: "test", facts: { vendor: "Acme", hardwareId: "hw-1", version: "2.0.0", securityVersion: 2 } }));

    const byId = new Map(field.map((d) => [d.id, d]));
    const offersBefore = new Map(field.map((d) => [d.id, d.nextMessage()]));
    const campaign = await app.firmware.campaigns.release({ image, manifest, group: "field", stages: "50,100", maxFailureRate: "50%", actor: "test" });
    const first = campaign.devices.filter((d) => d.stage === 0).map((d) => byId.get(d.deviceId)!);
    const second = campaign.devices.filter((d) => d.stage === 1).map((d) => byId.get(d.deviceId)!);
    expect(first).toHaveLength(2);
    expect(second).toHaveLength(2);

    // Stage 1 hears the offer through Moat's broker; stage 2 is still pending and was sent nothing.
    for (const device of first) {
      const offer = await offersBefore.get(device.id)!;
      expect(offer).toMatchObject({ type: "ota.update", campaignId: campaign.id, hardwareId: "hw-1", version: "2.0.0", securityVersion: 2 });
      expect(device.received.map((r) => r.topic)).toEqual([otaTopic(device.id)]);
    }
    expect((await app.firmware.campaigns.get(campaign.id)).devices.filter((d) => second.some((s) => s.id === d.deviceId)).map((d) => d.status)).toEqual(["pending", "pending"]);
    for (const device of second) expect(device.received).toEqual([]);

    // A malformed OTA report is ignored and changes nothing; the device's later reports still count, in order.
    await first[0]!.client.publishAsync(statusTopic(first[0]!.id), JSON.stringify({ type: "ota.status", campaignId: campaign.id, status: "exploded" }), { qos: 1 });
    await Promise.all(first.map((device) => report(device, campaign.id, "downloading", "verified", "installed", "booted")));

    // Both first-stage devices booted: the second stage opens and its devices are told.
    for (const device of second) {
      const offer = await offersBefore.get(device.id)!;
      expect(offer).toMatchObject({ type: "ota.update", campaignId: campaign.id });
    }
    await report(second[0]!, campaign.id, "downloading", "booted");
    await report(second[1]!, campaign.id, "downloading", "failed:IMAGE_DIGEST_MISMATCH");
    const done = await waitForCampaign(campaign.id, (status) => status !== "running");
    stopWatching();

    expect(done.status).toBe("completed");
    expect(Object.fromEntries(done.devices.map((d) => [d.deviceId, d.status]))).toEqual({
      [first[0]!.id]: "booted",
      [first[1]!.id]: "booted",
      [second[0]!.id]: "booted",
      [second[1]!.id]: "failed",
    });
    // Reports were attributed to the authenticated device and came through the hook.
    expect(intake.filter((m) => m.deviceId === first[1]!.id).map((m) => JSON.parse(m.payload.toString()).status)).toEqual(["downloading", "verified", "installed", "booted"]);
    const events = (await app.audit.list({ limit: 1000 })).filter((e) => e.data.campaignId === campaign.id).map((e) => e.type);
    expect(events.filter((type) => type === "ota.campaign.stage-opened")).toHaveLength(2);
    expect(events).toContain("ota.campaign.completed");
    // Each field device was offered the update exactly once; the device in the other group heard nothing.
    for (const device of field) expect(device.received.map((r) => r.message.type)).toEqual(["ota.update"]);
    expect(outsider.received).toEqual([]);
  });

  it("records what devices run in the firmware inventory: the release after an OTA boot, and the SDK's own report", async () => {
    const waitFor = async (id: string, version: string) => {
      for (;;) {
        const record = await app.firmwareInventory.get(id);
        if (record?.version === version) return record;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    // In the campaign above three field devices booted 2.0.0 and one failed, which leaves it without a report.
    const [campaign] = await app.firmware.campaigns.list({ status: "completed" });
    const booted = campaign!.devices.find((d) => d.status === "booted")!.deviceId;
    const failed = campaign!.devices.find((d) => d.status === "failed")!.deviceId;
    expect(await waitFor(booted, "2.0.0")).toMatchObject({ securityVersion: 2, source: "ota" });
    expect(await app.firmwareInventory.get(failed)).toBeNull();
    const device = devices.find((d) => d.id === failed)!;
    await device.client.publishAsync(statusTopic(device.id), JSON.stringify({ type: "firmware.inventory", version: "1.9.4", securityVersion: 1 }), { qos: 1 });
    // A malformed report is refused by the inventory (FIRMWARE_REPORT_INVALID) and records nothing.
    await devices.find((d) => d.id === "o-0")!.client.publishAsync(statusTopic("o-0"), JSON.stringify({ type: "firmware.inventory", version: "", securityVersion: -1 }), { qos: 1 });
    expect(await waitFor(failed, "1.9.4")).toMatchObject({ securityVersion: 1, source: "sdk" });
    expect(await app.firmwareInventory.get("o-0")).toBeNull();
  });

  it("delivers offers and aborts decided by another process on the same database (as moat ota release|abort do)", async () => {
    const remote = await connectDevice("r-0", "remote");
    expect((await remote.client.subscribeAsync(otaTopic(remote.id), { qos: 1 }))[0]!.qos).toBe(1);
    const image = writeImage(dir.path, "fw-remote.bin", 2048);
    const manifest = serializeManifest(await app.firmware.keys.signImage({ image, actor: "test", facts: { vendor: "Acme", hardwareId: "hw-1", version: "2.1.0", securityVersion: 3 } }));

    // A second app on the same data dir stands in for a CLI process: it has no broker of its own.
    const cli = await createApp(app.config);
    try {
      const offer = remote.nextMessage();
      const campaign = await cli.firmware.campaigns.release({ image, manifest, group: "remote", stages: "100", actor: "cli" });
      expect(await offer).toMatchObject({ type: "ota.update", campaignId: campaign.id, version: "2.1.0" });
      const abort = remote.nextMessage();
      await cli.firmware.campaigns.abort(campaign.id, "cli");
      expect(await abort).toEqual({ type: "ota.abort", campaignId: campaign.id });
      // Delivered once each: the serving process skips nothing and repeats nothing.
      expect(remote.received.map((r) => r.message.type)).toEqual(["ota.update", "ota.abort"]);
    } finally {
      await cli.close();
    }
  });

  it("hands over authorized publishes only, and keeps a quarantined device from the OTA topic", async () => {
    const device = await connectDevice("h-0", "hooks");
    const seen: DeviceMessage[] = [];
    const stop = node.broker.onDeviceMessage((message) => seen.push(message));
    // Denied by the device role (another device's status), acknowledged and dropped.
    await device.client.publishAsync(statusTopic("f-0"), "forged", { qos: 1 });
    await device.client.publishAsync("devices/h-0/telemetry/t", "21", { qos: 1 });
    // A client's packets are handled in order: once the allowed one is seen, the denied one had its turn.
    while (!seen.some((m) => m.topic === "devices/h-0/telemetry/t")) await new Promise((resolve) => setTimeout(resolve, 20));
    stop();
    expect(seen.map((m) => [m.deviceId, m.topic, m.payload.toString()])).toEqual([["h-0", "devices/h-0/telemetry/t", "21"]]);
    expect((await app.audit.list({ subject: "h-0", type: "acl.denied" }))[0]?.data).toMatchObject({ action: "publish", topic: statusTopic("f-0") });

    await expect(node.broker.publish("devices/+/ota", Buffer.from("{}"))).rejects.toMatchObject({ code: "BROKER_TOPIC_INVALID" });
    await expect(node.broker.publish("$SYS/x", Buffer.from("{}"))).rejects.toMatchObject({ code: "BROKER_TOPIC_INVALID" });

    await app.devices.setStatus("h-0", "quarantined", "test", "suspicious");
    expect(await app.policy.checkPermission("h-0", otaTopic("h-0"), "receive")).toBe(false);
    expect(await app.policy.checkPermission("h-0", otaTopic("h-0"), "subscribe")).toBe(false);
    expect(await app.policy.checkPermission("h-0", statusTopic("h-0"), "publish")).toBe(true);
  });
});
