/**
 * MQTT 5 session features as Mosquitto supports them, compared between Moat-controlled Mosquitto (a
 * permissive test role) and a plain Mosquitto with the same TLS listener started on another port:
 * session expiry, retained messages, wills, shared subscriptions and topic aliases. Each scenario
 * records what the clients saw; both brokers must give the same record.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MosquittoHarness, freePort, mosquittoAvailable, waitUntil, type DeviceCert } from "./harness.js";

const ok = mosquittoAvailable();

interface Target {
  name: string;
  port: number;
}

describe.skipIf(!ok)("MQTT 5 session features: Moat-controlled Mosquitto behaves like plain Mosquitto", () => {
  const h = new MosquittoHarness();
  let plain: ChildProcess | null = null;
  let plainPort = 0;
  const certs: Record<string, DeviceCert> = {};

  beforeAll(async () => {
    await h.init();
    await h.app.policy.createRole(
      "open",
      [
        { effect: "allow", action: "publish", resource: "t/#" },
        { effect: "allow", action: "subscribe", resource: "t/#" },
        { effect: "allow", action: "subscribe", resource: "$share/+/t/#" },
        { effect: "allow", action: "receive", resource: "t/#" },
      ],
      "test",
    );
    for (const id of ["f-pub", "f-sub", "f-sub2", "f-will"]) certs[id] = await h.device(id, { role: "open" });
    await h.startServe();
    // The plain Mosquitto: the same TLS options and server certificate, no plugin and no ACLs.
    const tls = await h.app.ca.serverTls();
    const dir = h.tmp.path;
    writeFileSync(join(dir, "plain.crt"), tls.cert);
    writeFileSync(join(dir, "plain.key"), tls.key, { mode: 0o644 });
    plainPort = await freePort();
    writeFileSync(
      join(dir, "plain.conf"),
      [
        "per_listener_settings false",
        "allow_anonymous false",
        "log_dest stderr",
        `listener ${plainPort} 127.0.0.1`,
        `certfile ${join(dir, "plain.crt")}`,
        `keyfile ${join(dir, "plain.key")}`,
        `cafile ${h.chainPath}`,
        "require_certificate true",
        "use_identity_as_username true",
        "use_username_as_clientid true",
        "tls_version tlsv1.2",
        "",
      ].join("\n"),
    );
    let log = "";
    plain = spawn("mosquitto", ["-c", join(dir, "plain.conf")], { stdio: ["ignore", "ignore", "pipe"] });
    plain.stderr!.on("data", (d) => (log += d));
    await waitUntil("the plain Mosquitto", () => (/running/.test(log) ? true : undefined), 10_000);
  }, 90_000);

  afterAll(async () => {
    if (plain && plain.exitCode === null) {
      const exited = new Promise((r) => plain!.once("exit", r));
      plain.kill("SIGTERM");
      await exited;
    }
    await h.close();
  });

  const targets = (): Target[] => [
    { name: "moat", port: h.port },
    { name: "plain", port: plainPort },
  ];

  const connect = async (target: Target, cert: DeviceCert, options: Partial<IClientOptions> = {}): Promise<{ client: MqttClient; sessionPresent: boolean }> => {
    const client = mqtt.connect({
      protocol: "mqtts",
      host: "127.0.0.1",
      port: target.port,
      ca: readFileSync(h.chainPath),
      cert: cert.certPem,
      key: cert.keyPem,
      protocolVersion: 5,
      clientId: cert.id,
      reconnectPeriod: 0,
      ...options,
    });
    const sessionPresent = await new Promise<boolean>((resolve, reject) => {
      client.once("connect", (connack) => resolve(connack.sessionPresent));
      client.once("error", reject);
    });
    return { client, sessionPresent };
  };
  const end = (client: MqttClient) => new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
  const collect = (client: MqttClient) => {
    const got: { topic: string; payload: string; retain: boolean }[] = [];
    client.on("message", (topic, payload, packet) => got.push({ topic, payload: payload.toString(), retain: packet.retain }));
    return got;
  };

  it("session expiry: a persistent session keeps its subscription and queued QoS 1 messages", async () => {
    const results: Record<string, unknown> = {};
    for (const target of targets()) {
      const first = await connect(target, certs["f-sub"]!, { clean: false, properties: { sessionExpiryInterval: 60 } });
      await first.client.subscribeAsync("t/session", { qos: 1 });
      await end(first.client);
      const pub = await connect(target, certs["f-pub"]!);
      await pub.client.publishAsync("t/session", "queued", { qos: 1 });
      await end(pub.client);
      const again = await connect(target, certs["f-sub"]!, { clean: false, properties: { sessionExpiryInterval: 60 } });
      const got = collect(again.client);
      await waitUntil("the queued message", () => (got.length > 0 ? true : undefined), 5_000).catch(() => undefined);
      results[target.name] = { sessionPresent: again.sessionPresent, got: got.map((m) => m.payload) };
      await end(again.client);
      // Clean up the session for the next scenario.
      await end((await connect(target, certs["f-sub"]!, { clean: true })).client);
    }
    expect(results.moat).toEqual({ sessionPresent: true, got: ["queued"] });
    expect(results.moat).toEqual(results.plain);
  });

  it("retained messages reach a later subscriber with the retain flag", async () => {
    const results: Record<string, unknown> = {};
    for (const target of targets()) {
      const pub = await connect(target, certs["f-pub"]!);
      await pub.client.publishAsync("t/retained", `kept-${target.name}`, { qos: 1, retain: true });
      await end(pub.client);
      const sub = await connect(target, certs["f-sub"]!);
      const got = collect(sub.client);
      await sub.client.subscribeAsync("t/retained", { qos: 1 });
      await waitUntil("the retained message", () => (got.length > 0 ? true : undefined), 5_000).catch(() => undefined);
      results[target.name] = got.map((m) => ({ retain: m.retain, payload: m.payload.replace(target.name, "X") }));
      await end(sub.client);
    }
    expect(results.moat).toEqual([{ retain: true, payload: "kept-X" }]);
    expect(results.moat).toEqual(results.plain);
  });

  it("a will is published when a client goes away without DISCONNECT", async () => {
    const results: Record<string, unknown> = {};
    for (const target of targets()) {
      const sub = await connect(target, certs["f-sub"]!);
      const got = collect(sub.client);
      await sub.client.subscribeAsync("t/will", { qos: 1 });
      const dying = await connect(target, certs["f-will"]!, { will: { topic: "t/will", payload: Buffer.from("gone"), qos: 1, retain: false } });
      // Drop the connection without DISCONNECT.
      (dying.client.stream as unknown as { destroy(): void }).destroy();
      await waitUntil("the will", () => (got.length > 0 ? true : undefined), 5_000).catch(() => undefined);
      results[target.name] = got.map((m) => m.payload);
      dying.client.end(true);
      await end(sub.client);
    }
    expect(results.moat).toEqual(["gone"]);
    expect(results.moat).toEqual(results.plain);
  });

  it("shared subscriptions split the messages between the group's members", async () => {
    const results: Record<string, unknown> = {};
    for (const target of targets()) {
      const a = await connect(target, certs["f-sub"]!);
      const b = await connect(target, certs["f-sub2"]!);
      const gotA = collect(a.client);
      const gotB = collect(b.client);
      const grantedA = await a.client.subscribeAsync("$share/g/t/shared", { qos: 1 });
      await b.client.subscribeAsync("$share/g/t/shared", { qos: 1 });
      const pub = await connect(target, certs["f-pub"]!);
      for (let i = 0; i < 10; i++) await pub.client.publishAsync("t/shared", String(i), { qos: 1 });
      await end(pub.client);
      await waitUntil("all shared messages", () => (gotA.length + gotB.length >= 10 ? true : undefined), 5_000).catch(() => undefined);
      const all = [...gotA, ...gotB].map((m) => Number(m.payload)).sort((x, y) => x - y);
      results[target.name] = { granted: grantedA.map((g) => g.qos), all, bothGotSome: gotA.length > 0 && gotB.length > 0 };
      await end(a.client);
      await end(b.client);
    }
    expect(results.moat).toEqual(results.plain);
    expect(results.plain).toMatchObject({ all: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], bothGotSome: true });
  });

  it("topic aliases: a publish by alias arrives on its topic", async () => {
    const results: Record<string, unknown> = {};
    for (const target of targets()) {
      const sub = await connect(target, certs["f-sub"]!);
      const got = collect(sub.client);
      await sub.client.subscribeAsync("t/alias", { qos: 1 });
      const pub = await connect(target, certs["f-pub"]!);
      await pub.client.publishAsync("t/alias", "one", { qos: 1, properties: { topicAlias: 1 } });
      await pub.client.publishAsync("", "two", { qos: 1, properties: { topicAlias: 1 } });
      await waitUntil("both messages", () => (got.length >= 2 ? true : undefined), 5_000).catch(() => undefined);
      results[target.name] = got.map((m) => `${m.topic}:${m.payload}`);
      await end(pub.client);
      await end(sub.client);
    }
    expect(results.moat).toEqual(["t/alias:one", "t/alias:two"]);
    expect(results.moat).toEqual(results.plain);
  });
});
