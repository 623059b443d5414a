/**
 * Detection as `moat serve` wires it (startDetection + the broker's traffic port), against Moat's own
 * broker with MQTT.js devices over mTLS: a device probing topics raises a stored alert with evidence and
 * an `alert.raised` event; a rules file applied by another process (the CLI) reaches the running engine
 * through the change feed; alerts are listed, acknowledged and resolved over the CLI and the API;
 * publishes are counted per device and exported per group; a restart resumes from the snapshot.
 */
import { createPrivateKey } from "node:crypto";
import { writeFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import mqtt, { type MqttClient } from "mqtt";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApi } from "../../src/api/index.js";
import type { DetectionRuntime } from "../../src/detect/index.js";
import { startDetection, startMqttBroker } from "../../src/serve.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";

const logger = pino({ level: "silent" });

async function until<T>(read: () => Promise<T | undefined | null | false>, what: string): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const value = await read();
    if (value) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("detection in a running server", () => {
  let t: TestApp;
  let detection: DetectionRuntime;
  let node: Awaited<ReturnType<typeof startMqttBroker>>;
  let api: FastifyInstance;
  let chain: string;
  const clients: MqttClient[] = [];
  const dir = tempDir("moat-detect-serve-");

  beforeAll(async () => {
    t = await createTestApp("sqlite", { "broker.mqttPort": 0, apiPort: 0, pkiPort: 0 });
    chain = await t.app.ca.chainPem();
    detection = await startDetection(t.app, logger);
    node = await startMqttBroker(t.app, logger, { traffic: { published: (id, bytes) => detection.engine.published(id, bytes), delivered: (id) => detection.engine.delivered(id) } });
    api = await buildApi(t.app, { bodyLimitBytes: 300_000, authFailureLimit: 1000, authFailureWindowSeconds: 60 });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await api?.close();
    await node?.close();
    await detection?.close();
    await t?.cleanup();
    dir.cleanup();
  });

  async function connect(id: string, group: string): Promise<MqttClient> {
    if (!(await t.app.devices.list({ search: id })).devices.some((d) => d.id === id)) await t.app.devices.create({ id, group }, "test");
    const issued = await t.app.pki.certificates.issueWithGeneratedKey({ deviceId: id, actor: "test" });
    const key = createPrivateKey({ key: issued.privateKeyPkcs8Der, format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }).toString();
    const client = await mqtt.connectAsync(`mqtts://localhost:${node.broker.ports.tls}`, { ca: chain, cert: issued.certificatePem, key, clientId: id, protocolVersion: 4, reconnectPeriod: 0, rejectUnauthorized: true });
    clients.push(client);
    return client;
  }

  it("a device probing other devices' topics raises one alert with evidence and an alert.raised event", async () => {
    const cam = await connect("cam-1", "cameras");
    // Subscriptions the policy refuses (SUBACK 0x80): five distinct filters in a few seconds.
    for (let i = 0; i < 6; i++) await expect(cam.subscribeAsync(`devices/victim-${i}/commands/#`, { qos: 0 })).rejects.toThrow(/Subscribe error/);
    const alert = await until(async () => (await t.app.alerts.list({ deviceId: "cam-1" })).alerts.find((a) => a.rule === "topic-probing"), "the topic-probing alert");
    expect(alert).toMatchObject({ subject: { kind: "device", id: "cam-1" }, severity: "high", status: "open", count: 1 });
    expect(alert.evidence[0]).toMatchObject({ kind: "metric", metric: "deniedTopics", window: "60s", threshold: 5 });
    expect(alert.evidence.filter((e) => e.kind === "event" && e.type === "acl.denied").length).toBeGreaterThanOrEqual(5);
    const raised = await t.app.audit.list({ type: "alert.raised" });
    expect(raised[0]).toMatchObject({ actor: "system:detect", subject: "cam-1", data: { alertId: alert.id, rule: "topic-probing", subject: { kind: "device", id: "cam-1" }, severity: "high", count: 1 } });
  });

  it("counts each device's publishes through the broker's traffic port and exports them per group, not per device", async () => {
    const meter = await connect("meter-1", "meters");
    for (let i = 0; i < 5; i++) await meter.publishAsync("devices/meter-1/telemetry/power", Buffer.alloc(300), { qos: 1 });
    await until(async () => detection.engine.metrics.counter("meter-1", "messagesSent", "60s", Date.now()) === 5, "five counted publishes");
    expect(detection.engine.metrics.view("meter-1", "60s", Date.now())).toMatchObject({ messagesSent: 5, bytesSent: 1500, sourceAddresses: 1, connectAttempts: 1 });
    const text = (await Promise.all(t.app.metricsSources.map((source) => source()))).join("\n");
    expect(text).toMatch(/moat_detect_group_messages_sent_60s\{group="meters"\} 5/);
    expect(text).toMatch(/moat_detect_alerts_unresolved\{severity="high"\} 1/);
    expect(text).not.toMatch(/meter-1/);
  });

  it("a rules file applied by the CLI reaches the running engine through the change feed", async () => {
    const file = `${dir.path}/rules.yaml`;
    writeFileSync(file, "rules:\n  - name: chatty\n    kind: threshold\n    metric: messagesSent\n    window: 60s\n    static: 3\n    severity: low\n");
    const applied = await runCli([...t.cliArgs, "detect", "rules", "apply", file]);
    expect(applied.stderr).toMatch(/applied .*rules in force/);
    expect(applied.code).toBe(0);
    await until(async () => detection.engine.activeRules().some((r) => r.name === "chatty"), "the engine to load the new rule");
    const meter = await connect("meter-2", "meters");
    for (let i = 0; i < 4; i++) await meter.publishAsync("devices/meter-2/telemetry/power", Buffer.from("1"), { qos: 1 });
    const alert = await until(async () => (await t.app.alerts.list({ deviceId: "meter-2" })).alerts.find((a) => a.rule === "chatty"), "the custom rule's alert");
    expect(alert.severity).toBe("low");
    const list = await runCli([...t.cliArgs, "detect", "rules", "list", "--json"]);
    expect((JSON.parse(list.stdout) as { name: string; origin: string }[]).find((r) => r.name === "chatty")).toMatchObject({ origin: "custom" });
  });

  it("lists, acknowledges and resolves alerts over the CLI and the API", async () => {
    const listed = await runCli([...t.cliArgs, "alerts", "list", "--device", "cam-1", "--open", "--json"]);
    expect(listed.code).toBe(0);
    const alerts = JSON.parse(listed.stdout) as { id: string; rule: string; subject: { kind: string; id: string }; status: string; count: number; firstSeen: string; lastSeen: string; evidence: unknown[]; severity: string }[];
    expect(alerts).toHaveLength(1);
    expect(Object.keys(alerts[0]!)).toEqual(expect.arrayContaining(["id", "rule", "subject", "severity", "status", "count", "firstSeen", "lastSeen", "evidence"]));
    const id = alerts[0]!.id;
    const ack = await runCli([...t.cliArgs, "alerts", "ack", id, "--json"]);
    expect(JSON.parse(ack.stdout)).toMatchObject({ status: "acknowledged" });
    const auth = { authorization: `Bearer ${t.adminToken}` };
    const shown = await api.inject({ url: `/v1/alerts/${id}`, headers: auth });
    expect(shown.json()).toMatchObject({ id, status: "acknowledged", subject: { kind: "device", id: "cam-1" } });
    const resolved = await api.inject({ method: "POST", url: `/v1/alerts/${id}/resolve`, headers: auth });
    expect(resolved.json()).toMatchObject({ status: "resolved" });
    const again = await api.inject({ method: "POST", url: `/v1/alerts/${id}/ack`, headers: auth });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: "ALERT_TRANSITION" });
    const types = (await t.app.audit.list({ subject: "cam-1" })).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(["alert.acknowledged", "alert.resolved"]));
    const open = await api.inject({ url: "/v1/alerts?open=true", headers: auth });
    expect(open.statusCode, open.body).toBe(200);
    expect((open.json() as { alerts: { id: string }[] }).alerts.some((a) => a.id === id)).toBe(false);
    const missing = await runCli([...t.cliArgs, "alerts", "show", "00000000-0000-0000-0000-000000000000"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error ALERT_NOT_FOUND/);
  });

  it("a restart resumes the metric state from the snapshot written at stop", async () => {
    const before = detection.engine.metrics.counter("meter-1", "messagesSent", "1h", Date.now());
    expect(before).toBe(5);
    await detection.close();
    detection = await startDetection(t.app, logger);
    expect(detection.engine.metrics.counter("meter-1", "messagesSent", "1h", Date.now())).toBe(before);
  });
});
