/**
 * A device that was offline when its OTA stage opened gets the offer when it is back: the link
 * re-sends owed offers when the broker grants the device a subscription covering its OTA topic
 * (the first moment a publish can reach it). Real broker, real mTLS MQTT.js clients with
 * certificates from Moat's PKI, clean sessions.
 */
import { createPrivateKey } from "node:crypto";
import mqtt, { type MqttClient } from "mqtt";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeOtaMessage, otaTopic, serializeManifest, statusTopic, type OtaMessage } from "../src/firmware/index.js";
import type { App } from "../src/core.js";
import { startMqttBroker } from "../src/serve.js";
import { createTestApp, type TestApp } from "./helpers/app.js";
import { tempDir } from "./helpers/temp.js";
import { writeImage } from "./firmware-fixtures.js";

interface Credentials {
  id: string;
  cert: string;
  key: string;
}

interface Connected {
  client: MqttClient;
  offers: OtaMessage[];
  nextOffer(): Promise<OtaMessage>;
}

describe("OTA offers for devices that were offline when their stage opened", () => {
  let t: TestApp;
  let app: App;
  let node: Awaited<ReturnType<typeof startMqttBroker>>;
  let chain: string;
  const clients: MqttClient[] = [];
  const dir = tempDir("moat-ota-reconnect-");

  beforeAll(async () => {
    t = await createTestApp("sqlite", { "broker.mqttPort": 0, apiPort: 0, pkiPort: 0 });
    app = t.app;
    chain = await app.ca.chainPem();
    node = await startMqttBroker(app, pino({ level: "silent" }));
    await app.firmware.keys.generateSigningKey({ name: "field", actor: "test" });
    await app.firmware.tuf.init({ actor: "test" });
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await node?.close();
    await t?.cleanup();
    dir.cleanup();
  });

  /** Registers a device and issues its certificate (which activates it); it is not connected. */
  async function enroll(id: string, group: string): Promise<Credentials> {
    await app.devices.create({ id, group }, "test");
    const issued = await app.pki.certificates.issueWithGeneratedKey({ deviceId: id, actor: "test" });
    const key = createPrivateKey({ key: issued.privateKeyPkcs8Der, format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }).toString();
    return { id, cert: issued.certificatePem, key };
  }

  /** Connects with a clean session (nothing queued from before) and collects what arrives on the OTA topic. */
  async function connect(device: Credentials): Promise<Connected> {
    const client = await mqtt.connectAsync(`mqtts://localhost:${node.broker.ports.tls}`, {
      ca: chain,
      cert: device.cert,
      key: device.key,
      clientId: device.id,
      clean: true,
      protocolVersion: 4,
      reconnectPeriod: 0,
      rejectUnauthorized: true,
    });
    clients.push(client);
    const waiting: ((message: OtaMessage) => void)[] = [];
    const connected: Connected = { client, offers: [], nextOffer: () => new Promise((resolve) => waiting.push(resolve)) };
    client.on("message", (topic, payload) => {
      if (topic !== otaTopic(device.id)) return;
      const message = JSON.parse(payload.toString()) as OtaMessage;
      connected.offers.push(message);
      waiting.shift()?.(message);
    });
    return connected;
  }

  async function release(group: string, version: string) {
    const image = writeImage(dir.path, `fw-${group}.bin`, 2048);
    const manifest = serializeManifest(await app.firmware.keys.signImage({ image, actor: "test", facts: { vendor: "Acme", hardwareId: "hw-1", version, securityVersion: 2 } }));
    return app.firmware.campaigns.release({ image, manifest, group, stages: "100", maxFailureRate: "50%", actor: "test" });
  }

  it("offers the update when an offline device reconnects and subscribes, and not to devices that already answered", async () => {
    const online = await enroll("on-0", "field");
    const offline = await enroll("off-0", "field");
    const onlineSession = await connect(online);
    expect((await onlineSession.client.subscribeAsync(otaTopic(online.id), { qos: 1 }))[0]!.qos).toBe(1);

    const firstOffer = onlineSession.nextOffer();
    const campaign = await release("field", "3.0.0");
    expect(campaign.devices.map((d) => d.status)).toEqual(["notified", "notified"]);
    expect(await firstOffer).toMatchObject({ type: "ota.update", campaignId: campaign.id, version: "3.0.0" });

    // The device that was offline when the stage opened comes back (clean session: nothing was queued for it).
    const late = await connect(offline);
    const lateOffer = late.nextOffer();
    expect((await late.client.subscribeAsync(otaTopic(offline.id), { qos: 1 }))[0]!.qos).toBe(1);
    expect(await lateOffer).toMatchObject({ type: "ota.update", campaignId: campaign.id, version: "3.0.0", hardwareId: "hw-1" });

    // Once a device reports, it is owed nothing: the reconnect re-send asks the campaign, not a cache.
    await onlineSession.client.publishAsync(statusTopic(online.id), encodeOtaMessage({ type: "ota.status", campaignId: campaign.id, status: "downloading" }), { qos: 1 });
    for (;;) {
      const current = await app.firmware.campaigns.get(campaign.id);
      if (current.devices.find((d) => d.deviceId === online.id)!.status === "downloading") break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await app.firmware.campaigns.offersOwedTo([online.id, offline.id, "nobody"])).toEqual([
      { deviceId: offline.id, message: { type: "ota.update", campaignId: campaign.id, ...campaign.release } },
    ]);

    // The late device finishes; an aborted or completed campaign owes nobody anything.
    await late.client.publishAsync(statusTopic(offline.id), encodeOtaMessage({ type: "ota.status", campaignId: campaign.id, status: "booted" }), { qos: 1 });
    await onlineSession.client.publishAsync(statusTopic(online.id), encodeOtaMessage({ type: "ota.status", campaignId: campaign.id, status: "booted" }), { qos: 1 });
    for (;;) {
      if ((await app.firmware.campaigns.get(campaign.id)).status === "completed") break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await app.firmware.campaigns.offersOwedTo([online.id, offline.id])).toEqual([]);
    expect(late.offers.map((o) => o.type)).toEqual(["ota.update"]);
  });

  it("re-sends only for a granted subscription that covers the device's own OTA topic", async () => {
    const device = await enroll("hook-0", "hooks");
    const seen: string[] = [];
    const stop = node.broker.onDeviceSubscribedTo(otaTopic, (deviceId) => seen.push(deviceId));
    try {
      const session = await connect(device);
      // Refused by the device role (SUBACK 0x80): `#` would match, but nothing was granted.
      await expect(session.client.subscribeAsync("#", { qos: 1 })).rejects.toThrow(/Subscribe error/);
      // Granted, but does not cover the OTA topic.
      expect((await session.client.subscribeAsync(`devices/${device.id}/commands/#`, { qos: 1 }))[0]!.qos).toBe(1);
      expect(seen).toEqual([]);
      // The hook runs as the SUBACK is written, so it has run by the time the client reads it.
      expect((await session.client.subscribeAsync(otaTopic(device.id), { qos: 1 }))[0]!.qos).toBe(1);
      expect(seen).toEqual([device.id]);
    } finally {
      stop();
    }
  });

  it("re-sends a paused campaign's owed offers too (devices told may still finish)", async () => {
    const a = await enroll("p-0", "paused");
    const b = await enroll("p-1", "paused");
    const campaign = await release("paused", "4.0.0");
    await app.firmware.campaigns.pause(campaign.id, "test");
    const back = await connect(b);
    const offer = back.nextOffer();
    await back.client.subscribeAsync(otaTopic(b.id), { qos: 1 });
    expect(await offer).toMatchObject({ type: "ota.update", campaignId: campaign.id, version: "4.0.0" });
    await app.firmware.campaigns.abort(campaign.id, "test");
    expect(await app.firmware.campaigns.offersOwedTo([a.id, b.id])).toEqual([]);
  });
});
