import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { connect, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApi } from "../src/api/index.js";
import { OtaClient, provisionTufRoot } from "../src/device/index.js";
import {
  FileSecurityCounter,
  encodeOtaMessage,
  mqttOtaNotifier,
  otaTopic,
  parseOtaStatusMessage,
  serializeManifest,
  statusTopic,
  type OtaMessage,
} from "../src/firmware/index.js";
import { createTestApp, type TestApp } from "./helpers/app.js";
import { requirement } from "./helpers/requirements.js";
import { tempDir } from "./helpers/temp.js";
import { writeImage } from "./firmware-fixtures.js";

const MQTT_URL = "mqtt://127.0.0.1:1883";
const mosquittoUp = await new Promise<boolean>((resolve) => {
  const socket: Socket = connect({ host: "127.0.0.1", port: 1883 }, () => {
    socket.destroy();
    resolve(true);
  });
  socket.on("error", () => resolve(false));
});
const hasBroker = requirement("Mosquitto on 127.0.0.1:1883", mosquittoUp, "apt-get install -y mosquitto && service mosquitto start");

/**
 * The campaign's device channel over a real MQTT broker. Moat's own broker does not expose
 * in-process publish/subscribe yet, so Mosquitto on loopback stands in: the notifier publishes
 * `ota.update` on devices/{id}/ota, simulated devices run the real OTA client against /tuf/ and
 * publish `ota.status` on devices/{id}/status, and a bridge feeds those into the status intake.
 */
describe.skipIf(!hasBroker)("OTA campaign over MQTT with simulated devices", () => {
  let t: TestApp;
  let api: FastifyInstance;
  let tufUrl: string;
  let ca: string;
  const clients: MqttClient[] = [];
  const dir = tempDir("moat-ota-mqtt-");
  const run = randomBytes(4).toString("hex");

  beforeAll(async () => {
    t = await createTestApp("sqlite");
    const tls = await t.app.ca.serverTls();
    ca = tls.ca;
    api = await buildApi(t.app, { https: tls, bodyLimitBytes: 1 << 20, authFailureLimit: 5, authFailureWindowSeconds: 60 });
    await api.listen({ host: "127.0.0.1", port: 0 });
    tufUrl = `https://127.0.0.1:${(api.server.address() as AddressInfo).port}/tuf/`;
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await api?.close();
    await t?.cleanup();
    dir.cleanup();
  });

  async function client(id: string): Promise<MqttClient> {
    const c = await mqtt.connectAsync(MQTT_URL, { clientId: `${id}-${run}`, protocolVersion: 4, reconnectPeriod: 0 });
    clients.push(c);
    return c;
  }

  it("stages the rollout, collects status from every device and completes despite one tolerated rollback", async () => {
    const ids = [0, 1, 2, 3].map((i) => `gw-${run}-${i}`);
    for (const id of ids) await t.app.devices.create({ id, group: `field-${run}`, status: "active" }, "test");
    await t.app.firmware.keys.generateSigningKey({ name: "field", actor: "test" });
    const image = writeImage(dir.path, "gw.bin", 48_000);
    const manifest = serializeManifest(await t.app.firmware.keys.signImage({ image, actor: "test", facts: { vendor: "Acme", hardwareId: "gw-1", version: "3.1.0", securityVersion: 4 } }));
    const rootKey = await t.app.firmware.keys.rootPublicKey();
    const unhealthy = new Set<string>();

    // The server side: publish offers, and feed status messages into the campaign.
    const server = await client("moat-server");
    t.app.firmware.campaigns.setNotifier(mqttOtaNotifier(async (topic, payload) => void (await server.publishAsync(topic, payload, { qos: 1 }))));
    // Reports of one device are applied in the order they arrived (MQTT keeps per-client order).
    const intake = new Map<string, Promise<unknown>>();
    const rejected: string[] = [];
    await server.subscribeAsync("devices/+/status", { qos: 1 });
    server.on("message", (topic, payload) => {
      const deviceId = topic.split("/")[1]!;
      if (!ids.includes(deviceId)) return;
      const report = parseOtaStatusMessage(payload);
      if (!report) return;
      const previous = intake.get(deviceId) ?? Promise.resolve();
      intake.set(deviceId, previous.then(() => t.app.firmware.campaigns.report(report.campaignId, deviceId, report.status)).catch((e: Error) => rejected.push(e.message)));
    });

    // The devices: provisioned with the TUF root, they wait for an offer, update and report each step.
    await t.app.firmware.tuf.init({ actor: "test" });
    for (const id of ids) {
      const home = join(dir.path, id);
      mkdirSync(home, { recursive: true });
      await provisionTufRoot(join(home, "tuf"), await t.app.firmware.tuf.trustedRoot(1));
      const device = await client(id);
      const ota = new OtaClient({
        hardwareId: "gw-1",
        repositoryUrl: tufUrl,
        metadataDir: join(home, "tuf"),
        slotsDir: join(home, "slots"),
        trustedRoots: [rootKey],
        counter: new FileSecurityCounter(join(home, "counter")),
        tls: { ca },
        healthCheck: async () => !unhealthy.has(id),
        onStatus: async ({ campaignId, status }) =>
          void (await device.publishAsync(statusTopic(id), encodeOtaMessage({ type: "ota.status", campaignId: campaignId!, status }), { qos: 1 })),
      });
      await device.subscribeAsync(otaTopic(id), { qos: 1 });
      device.on("message", (_topic, payload) => {
        const message = JSON.parse(payload.toString()) as OtaMessage;
        if (message.type === "ota.update") void ota.update(message);
      });
    }

    const campaign = await t.app.firmware.campaigns.release({ image, manifest, group: `field-${run}`, stages: "25,100", maxFailureRate: "40%", actor: "test" });
    // One device of the second stage will fail its health check after installing: 1 of 4 = 25% ≤ 40%.
    unhealthy.add(campaign.devices.find((d) => d.stage === 1)!.deviceId);

    let current = campaign;
    for (let waited = 0; current.status === "running" && waited < 600; waited++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      current = await t.app.firmware.campaigns.get(campaign.id);
    }
    await Promise.all(intake.values());
    expect(rejected).toEqual([]);
    expect(current.status).toBe("completed");
    const statuses = Object.fromEntries(current.devices.map((d) => [d.deviceId, d.status]));
    expect(Object.values(statuses).sort()).toEqual(["booted", "booted", "booted", "rolled-back"]);
    const events = (await t.app.audit.list({ limit: 1000 })).filter((e) => e.data.campaignId === campaign.id).map((e) => e.type);
    expect(events.filter((e) => e === "ota.campaign.stage-opened")).toHaveLength(2);
    expect(events).toContain("ota.campaign.completed");
  });
});
