/**
 * The MQTT alert topic on Moat's own broker, wired as `moat serve` wires it (startMqttBroker and
 * startResponse): an operator's tool, enrolled as a device with a role that grants `moat/alerts/#`,
 * receives alerts; an ordinary device may not subscribe to them. Also: a range ban from the executor
 * reaches the listeners, and a valid certificate still connects from the banned range.
 */
import { createPrivateKey } from "node:crypto";
import mqtt, { type MqttClient } from "mqtt";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMqttBroker, startResponse } from "../../src/serve.js";
import { createTestApp, type TestApp } from "../helpers/app.js";

let t: TestApp;
let node: Awaited<ReturnType<typeof startMqttBroker>>;
let stopResponse: () => Promise<void>;
let chain: string;
const clients: MqttClient[] = [];

beforeAll(async () => {
  t = await createTestApp("sqlite", { "broker.mqttPort": 0, apiPort: 0, pkiPort: 0 });
  chain = await t.app.ca.chainPem();
  const logger = pino({ level: "silent" });
  node = await startMqttBroker(t.app, logger);
  stopResponse = await startResponse(t.app, node.broker, logger);
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.endAsync(true)));
  await stopResponse?.();
  await node?.close();
  await t?.cleanup();
});

async function connect(id: string, role?: string): Promise<MqttClient> {
  await t.app.devices.create({ id, ...(role ? { role } : {}) }, "test");
  const issued = await t.app.pki.certificates.issueWithGeneratedKey({ deviceId: id, actor: "test" });
  const key = createPrivateKey({ key: issued.privateKeyPkcs8Der, format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }).toString();
  const client = await mqtt.connectAsync(`mqtts://localhost:${node.broker.ports.tls}`, { ca: chain, cert: issued.certificatePem, key, clientId: id, protocolVersion: 4, reconnectPeriod: 0, rejectUnauthorized: true });
  clients.push(client);
  return client;
}

async function subackOf(client: MqttClient, topic: string): Promise<number> {
  try {
    return (await client.subscribeAsync(topic, { qos: 1 }))[0]!.qos;
  } catch (error) {
    const granted = (error as { packet?: { granted?: (number | { qos: number })[] } }).packet?.granted?.[0];
    return typeof granted === "object" ? granted.qos : (granted ?? -1);
  }
}

describe("the MQTT alert topic", () => {
  it("delivers a new alert to an operator tool whose role grants moat/alerts/#, and to no ordinary device", async () => {
    await t.app.policy.createRole("alert-reader", [
      { effect: "allow", action: "subscribe", resource: "moat/alerts/#" },
      { effect: "allow", action: "receive", resource: "moat/alerts/#" },
    ], "test");
    await t.app.respond.notifier.addMqtt({ name: "ops", minSeverity: "medium" }, "test");
    const tool = await connect("soc-tool", "alert-reader");
    const device = await connect("plain-device");
    expect(await subackOf(tool, "moat/alerts/#")).toBe(1);
    expect(await subackOf(device, "moat/alerts/#")).toBe(128);
    const received = new Promise<{ topic: string; body: { type: string; data: Record<string, unknown> } }>((resolve) =>
      tool.once("message", (topic, payload) => resolve({ topic, body: JSON.parse(payload.toString()) })),
    );
    await t.app.audit.emit({
      type: "alert.raised",
      severity: "high",
      actor: "system:detect",
      subject: "plain-device",
      data: { alertId: "al-topic-1", rule: "topic-probing", subject: { kind: "device", id: "plain-device" }, severity: "high", count: 1 },
    });
    const message = await received;
    expect(message.topic).toBe("moat/alerts/high");
    expect(message.body).toMatchObject({ type: "alert.raised", data: { alertId: "al-topic-1", subject: { id: "plain-device" } } });
  });

  it("a ban-range action reaches the listeners; a device with a valid certificate in the range still connects", async () => {
    await t.app.respond.playbooks.apply("name: stuffing\nrule: credential-stuffing\nactions: [ban-range]\n", "test");
    // The server re-reads playbooks when their feed row arrives; the test does not wait for the poll.
    await t.app.respond.executor.reload();
    const [action] = await t.app.respond.executor.handle({ alertId: "al-ban-1", rule: "credential-stuffing", subject: { kind: "address-range", id: "127.0.0.0/8" }, severity: "critical", count: 1 });
    for (let i = 0; i < 100 && !node.broker.bannedRanges().includes("127.0.0.0/8"); i++) await new Promise((r) => setTimeout(r, 20));
    expect(action).toMatchObject({ action: "ban-range", status: "done" });
    expect(node.broker.bannedRanges()).toEqual(["127.0.0.0/8"]);
    // Guessing from the range is refused before any lookup...
    const guess = await mqtt
      .connectAsync(`mqtts://localhost:${node.broker.ports.tls}`, { ca: chain, clientId: "nobody", username: "nobody", password: "guess", protocolVersion: 4, reconnectPeriod: 0 })
      .then(
        () => "connected",
        (error: Error) => error.message,
      );
    expect(guess).toMatch(/Not authorized/i);
    const [refusal] = await t.app.audit.list({ type: "auth.failed" });
    expect(refusal).toMatchObject({ data: { reason: "banned", detail: "address range" } });
    // ...but a valid client certificate is never refused by a ban.
    const device = await connect("banned-range-device");
    expect(device.connected).toBe(true);
  });
});
