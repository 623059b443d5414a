/**
 * Unauthenticated failures over real sockets, as `moat serve` wires them: MQTT junk with ever-new client
 * ids and failed EST enrollments reach the raw event stream one by one, but the audit log only in
 * aggregated form; EST failures back off like bad API tokens (429 with Retry-After).
 */
import { request } from "node:https";
import type { FastifyInstance } from "fastify";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApi } from "../../src/api/index.js";
import type { SecurityEventInput } from "../../src/audit/index.js";
import { createLogger, startMqttBroker } from "../../src/serve.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { requireCommand } from "../helpers/requirements.js";

const ok = requireCommand("openssl", "openssl");

/** One CONNECT without credentials from `localAddress`; resolves when the broker has answered or closed. */
function junkConnect(port: number, ca: string, clientId: string, localAddress: string): Promise<void> {
  return new Promise((resolve) => {
    const client = mqtt.connect(`mqtts://127.0.0.1:${port}`, { ca, localAddress, clientId, reconnectPeriod: 0, connectTimeout: 10_000, protocolVersion: 4 } as mqtt.IClientOptions);
    const done = () => {
      client.end(true);
      resolve();
    };
    client.once("connect", done);
    client.once("error", done);
    client.once("close", done);
  });
}

/** A failed EST enrollment (an enrollment token that does not exist). */
function badEnroll(port: number, ca: string): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method: "POST", path: "/.well-known/est/simpleenroll", ca, headers: { authorization: "Bearer moat-et_0000000000000000_nope", "content-type": "application/pkcs10" } },
      (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers["retry-after"] as string | undefined, body }));
      },
    );
    req.on("error", reject);
    req.end("MIIB");
  });
}

describe.skipIf(!ok)("failures from unauthenticated peers", () => {
  let t: TestApp;
  let api: FastifyInstance;
  let closeBroker: () => Promise<void>;
  let mqttPort: number;
  let apiPort: number;
  let ca: string;
  const raw: SecurityEventInput[] = [];

  beforeAll(async () => {
    t = await createTestApp("sqlite", { "broker.mqttPort": 0, "broker.mqttWssPort": 0 });
    t.app.audit.onEvent((event) => raw.push(event));
    const tls = await t.app.ca.serverTls();
    ca = await t.app.ca.chainPem();
    api = await buildApi(t.app, { https: { key: tls.key, cert: tls.cert, ca: tls.ca }, bodyLimitBytes: 1_048_576, authFailureLimit: 10, authFailureWindowSeconds: 60 });
    await api.listen({ host: "127.0.0.1", port: 0 });
    apiPort = (api.server.address() as { port: number }).port;
    const broker = await startMqttBroker(t.app, createLogger(t.app.config));
    closeBroker = broker.close;
    mqttPort = broker.broker.ports.tls!;
  });
  afterAll(async () => {
    await api?.close();
    await closeBroker?.();
    await t?.cleanup();
  });

  const logged = async (address: string) =>
    (await t.app.audit.list({ limit: 1000 })).filter((e) => e.data.address === address && e.type.startsWith("auth.failed")).sort((a, b) => a.seq - b.seq);
  const until = async (check: () => boolean) => {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 25));
  };

  it("writes one full row per source and kind, then summaries with count and distinct client ids, while the raw stream sees every attempt", async () => {
    const from = "127.0.0.8";
    // Five failures ban the address; the rest are refused as banned. Every attempt tries a new client id.
    for (let i = 0; i < 20; i++) await junkConnect(mqttPort, ca, `junk-${i}`, from);
    const failures = () => raw.filter((e) => e.type === "auth.failed" && e.data?.address === from);
    await until(() => failures().length >= 20);
    expect(failures()).toHaveLength(20);
    const kinds = [...new Set(failures().map((e) => e.data?.reason))].sort();
    expect(kinds).toEqual(["banned", "no_client_certificate"]);

    const full = (await logged(from)).filter((e) => e.type === "auth.failed");
    expect(full.map((e) => e.data.reason).sort()).toEqual(kinds);
    await t.app.securityEvents.flush();
    const summaries = (await logged(from)).filter((e) => e.type === "auth.failed.summary");
    expect(summaries.map((e) => e.data).sort((a, b) => String(a.kind).localeCompare(String(b.kind)))).toEqual([
      expect.objectContaining({ kind: "mqtt:banned", count: 14, distinctClientIds: 14 }),
      expect.objectContaining({ kind: "mqtt:no_client_certificate", count: 4, distinctClientIds: 4 }),
    ]);
  });

  it("audits failed EST enrollments the same way and throttles them after 10 failures in 60 s from one address", async () => {
    const answers = [];
    for (let i = 0; i < 12; i++) answers.push(await badEnroll(apiPort, ca));
    expect(answers.slice(0, 10).map((a) => a.status)).toEqual(Array(10).fill(401));
    for (const throttled of answers.slice(10)) {
      expect(throttled.status).toBe(429);
      expect(Number(throttled.retryAfter)).toBeGreaterThan(0);
      expect(JSON.parse(throttled.body)).toMatchObject({ code: "RATE_LIMITED" });
    }
    expect(raw.filter((e) => e.type === "auth.failed" && e.data?.channel === "est")).toHaveLength(10);
    await t.app.securityEvents.flush();
    const rows = (await logged("127.0.0.1")).filter((e) => e.data.channel === "est" || e.data.kind === "est:PKI_ENROLL_TOKEN_INVALID");
    expect(rows.map((e) => [e.type, e.data.reason ?? e.data.kind, e.data.count ?? 1])).toEqual([
      ["auth.failed", "PKI_ENROLL_TOKEN_INVALID", 1],
      ["auth.failed.summary", "est:PKI_ENROLL_TOKEN_INVALID", 9],
    ]);
  });
});
