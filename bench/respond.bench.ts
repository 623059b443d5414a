/**
 * Time from an alert to the device's session being narrowed, with automatic quarantine on: a playbook
 * quarantines on `alert.raised`, the broker (in this process, as `moat serve` wires it) re-checks the
 * live mTLS session under the quarantine role. "Narrowed" is observed from the device's side, by a real
 * MQTT.js client that keeps subscribing to its own commands topic (allowed by the device role, refused
 * by the quarantine role): the time is from just before the `alert.raised` event is appended to the
 * first SUBACK that refuses (0x80), so it includes one subscribe round trip of resolution.
 *
 * Reference, side by side in the same run: an operator's quarantine (`DeviceService.setStatus`, what
 * `moat device quarantine` and the API do) observed the same way. Trials alternate Moat/reference on
 * fresh devices so load from elsewhere on the machine hits both alike. The ratio says how much the
 * response path (executor, playbook, cap check, action record) adds to the status change itself.
 */
import { createPrivateKey } from "node:crypto";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import mqtt, { type MqttClient } from "mqtt";
import pino from "pino";
import { loadConfig } from "../src/config/index.js";
import { initialize, type App } from "../src/core.js";
import { startMqttBroker, startResponse } from "../src/serve.js";
import type { BenchContext, BenchRow } from "./harness.js";

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

async function connect(app: App, port: number, chain: string, id: string): Promise<MqttClient> {
  await app.devices.create({ id }, "bench");
  const issued = await app.pki.certificates.issueWithGeneratedKey({ deviceId: id, actor: "bench" });
  const key = createPrivateKey({ key: issued.privateKeyPkcs8Der, format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }).toString();
  return mqtt.connectAsync(`mqtts://localhost:${port}`, { ca: chain, cert: issued.certificatePem, key, clientId: id, protocolVersion: 4, reconnectPeriod: 0, rejectUnauthorized: true });
}

/** One SUBSCRIBE to the device's own commands topic: true when the broker refused it (SUBACK 0x80). */
async function refused(client: MqttClient, id: string): Promise<boolean> {
  try {
    const [granted] = await client.subscribeAsync(`devices/${id}/commands/probe`, { qos: 0 });
    return granted!.qos === 128;
  } catch (error) {
    // MQTT.js rejects a SUBACK of 0x80 (ErrorWithSubackPacket, carrying the packet).
    const granted = (error as { packet?: { granted?: (number | { qos: number })[] } }).packet?.granted?.[0];
    if (granted === 128 || (typeof granted === "object" && granted.qos === 128)) return true;
    throw error;
  }
}

/** Subscribes until the broker refuses; returns when it did (ms, performance clock). */
async function untilRefused(client: MqttClient, id: string, deadlineMs = 5_000): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await refused(client, id)) return performance.now();
    if (performance.now() - started > deadlineMs) throw new Error(`device ${id} was not narrowed within ${deadlineMs} ms`);
  }
}

export default async function respondBench(ctx: BenchContext): Promise<BenchRow[]> {
  const trials = ctx.quick ? 6 : 30;
  const config = loadConfig({ env: {}, flags: { dataDir: join(ctx.tmpDir, "respond"), logLevel: "silent", "broker.mqttPort": 0, apiPort: 0, pkiPort: 0, "feed.pollMs": 200 } });
  const { app } = await initialize(config, { trustDomain: "bench.moat", keyType: "ec-p256", hostnames: ["localhost", "127.0.0.1"] });
  const logger = pino({ level: "silent" });
  const node = await startMqttBroker(app, logger);
  const stopResponse = await startResponse(app, node.broker, logger);
  const clients: MqttClient[] = [];
  try {
    await app.respond.playbooks.apply(`name: bench-contain\nrule: bench-probe\nactions: [quarantine]\nrateLimit: { max: 10000, window: 1h }\n`, "bench");
    const chain = await app.ca.chainPem();
    const port = node.broker.ports.tls!;
    const moat: number[] = [];
    const reference: number[] = [];
    ctx.log(`respond: ${trials} trials each, alert→narrowed and operator quarantine→narrowed`);
    for (let i = 0; i < trials; i++) {
      for (const path of i % 2 === 0 ? (["moat", "reference"] as const) : (["reference", "moat"] as const)) {
        const id = `bench-${path}-${i}`;
        const client = await connect(app, port, chain, id);
        clients.push(client);
        // The device role grants the subscription before anything happens.
        if (await refused(client, id)) throw new Error(`device ${id} was refused before the trial`);
        const t0 = performance.now();
        const narrowed = untilRefused(client, id);
        if (path === "moat")
          await app.audit.emit({
            type: "alert.raised",
            severity: "high",
            actor: "system:detect",
            subject: id,
            data: { alertId: `bench-alert-${i}`, rule: "bench-probe", subject: { kind: "device", id }, severity: "high", count: 1 },
          });
        else await app.devices.setStatus(id, "quarantined", "operator:bench", "bench reference");
        (path === "moat" ? moat : reference).push((await narrowed) - t0);
        await client.endAsync(true);
      }
    }
    const note = `${trials} trials each on fresh mTLS devices, SQLite, broker and executor in one process, interleaved; resolution one SUBSCRIBE round trip`;
    return [
      { measure: "alert.raised → session narrowed (auto-quarantine), p50", moat: quantile(moat, 0.5), reference: quantile(reference, 0.5), referenceName: "operator quarantine → narrowed, p50", unit: "ms", higherIsBetter: false, goal: "<= 100 ms", note },
      { measure: "alert.raised → session narrowed (auto-quarantine), p95", moat: quantile(moat, 0.95), reference: quantile(reference, 0.95), referenceName: "operator quarantine → narrowed, p95", unit: "ms", higherIsBetter: false, goal: "<= 100 ms", note },
      { measure: "alert.raised → session narrowed (auto-quarantine), max", moat: Math.max(...moat), reference: Math.max(...reference), referenceName: "operator quarantine → narrowed, max", unit: "ms", higherIsBetter: false, note },
    ];
  } finally {
    await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
    await stopResponse();
    await node.close();
    await app.close();
  }
}
