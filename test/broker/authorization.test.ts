/**
 * Authorization on publish, subscribe and delivery with the real policy engine, the limits (payload,
 * rate, denials), wills, retained messages, `$SYS`, live narrowing of sessions, bans and the
 * loopback plaintext listener.
 */
import { randomBytes } from "node:crypto";
import { connect as tlsConnect } from "node:tls";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireCommand } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";
import { closed, connectMqtt, counterValue, inbox, settle, startTestBroker, subscribeGranted, type ConnectResult, type TestBroker } from "./helpers/harness.js";
import { createTestPki, type IssuedCert, type TestPki } from "./helpers/test-pki.js";

const ok = requireCommand("openssl", "openssl");

function connected(result: ConnectResult) {
  if (!result.ok) throw new Error(`connect refused: ${result.message}`);
  return result.client;
}

describe.skipIf(!ok)("broker: authorization and limits", () => {
  const tmp = tempDir("moat-broker-authz-");
  let pki: TestPki;
  let tb: TestBroker;
  const certs = new Map<string, IssuedCert>();

  const device = (id: string, extra: Parameters<TestBroker["directory"]["put"]>[0] | object = {}) => {
    const cert = pki.device(id);
    certs.set(id, cert);
    tb.directory.put({ id, certSerials: [cert.serial], ...extra });
    return cert;
  };
  const connectAs = (id: string, options: object = {}) => {
    const cert = certs.get(id)!;
    return connectMqtt(tb.port, pki, { clientId: id, cert: cert.certPem, key: cert.keyPem, ...options });
  };

  beforeAll(async () => {
    pki = createTestPki(tmp.path);
    tb = await startTestBroker(pki, { authFailureLimit: 1000, maxPublishDenials: 3, maxPayloadBytes: 1024, messagesPerSecond: 5, rateBurst: 5, rateDropsBeforeDisconnect: 10 });
    tb.policy.addRole({
      name: "sensor-reader",
      rules: [
        { effect: "allow", action: "subscribe", resource: "sensors/#" },
        { effect: "allow", action: "receive", resource: "sensors/public/#" },
      ],
    });
    tb.policy.addRole({ name: "sensor-writer", rules: [{ effect: "allow", action: "publish", resource: "sensors/#" }] });
    tb.policy.addRole({
      name: "events-watcher",
      rules: [
        { effect: "allow", action: "subscribe", resource: "devices/+/events/#" },
        { effect: "allow", action: "receive", resource: "devices/+/events/#" },
      ],
    });
    for (const id of ["d1", "d2", "reader", "writer", "watcher", "q1", "s1", "r1", "fast", "big"]) device(id);
    tb.policy.assign("events-watcher", "device", "watcher");
    for (const id of ["d1", "d2", "q1", "s1", "r1", "fast", "big"]) tb.policy.assign("device", "device", id);
    tb.policy.assign("sensor-reader", "device", "reader");
    tb.policy.assign("sensor-writer", "device", "writer");
  });

  afterAll(async () => {
    await tb?.close();
    tmp.cleanup();
  });

  it("refuses a subscription to # and to $SYS with SUBACK 0x80 and keeps the connection", async () => {
    const client = connected(await connectAs("d1"));
    const granted = await subscribeGranted(client, ["#", "$SYS/#", "devices/d1/commands/#"]);
    expect(granted).toEqual([128, 128, 0]);
    expect(client.connected).toBe(true);
    const event = await tb.events.waitFor((e) => e.type === "acl.denied" && e.subject === "d1" && e.data?.topic === "#");
    expect(event.data).toMatchObject({ action: "subscribe", reason: "policy" });
    await client.endAsync();
  });

  it("never forwards a publish to another device's topic, and disconnects after the configured denials", async () => {
    const victim = connected(await connectAs("d2"));
    const box = inbox(victim);
    await victim.subscribeAsync("devices/d2/commands/#", { qos: 1 });
    const attacker = connected(await connectAs("d1"));
    await attacker.publishAsync("devices/d2/commands/open", "1", { qos: 1 });
    await attacker.publishAsync("devices/d2/commands/open", "2", { qos: 1 });
    expect(attacker.connected).toBe(true);
    const gone = closed(attacker);
    attacker.publish("devices/d2/commands/open", "3", { qos: 0 });
    await gone;
    await settle();
    expect(box.messages).toHaveLength(0);
    expect(tb.events.of("acl.denied").filter((e) => e.subject === "d1" && e.data?.action === "publish").length).toBeGreaterThanOrEqual(3);
    await victim.endAsync();
  });

  it("disconnects a client that publishes to $SYS", async () => {
    const client = connected(await connectAs("d1"));
    const gone = closed(client);
    client.publish("$SYS/fake/heartbeat", "x");
    await gone;
    await tb.events.waitFor((e) => e.type === "acl.denied" && e.subject === "d1" && e.data?.reason === "reserved_topic");
  });

  it("refuses a forbidden will topic at CONNECT and accepts an allowed one", async () => {
    const refused = await connectAs("d1", { will: { topic: "devices/d2/commands/open", payload: Buffer.from("x"), qos: 0, retain: false } });
    expect(refused).toMatchObject({ ok: false, returnCode: 5 });
    await tb.events.waitFor((e) => e.type === "auth.failed" && e.subject === "d1" && e.data?.reason === "will_denied");

    const watcher = connected(await connectAs("watcher"));
    const box = inbox(watcher);
    await watcher.subscribeAsync("devices/+/events/#");
    const good = connected(await connectAs("d1", { will: { topic: "devices/d1/events/offline", payload: Buffer.from("gone"), qos: 0, retain: false } }));
    // An unclean end of the connection publishes the (authorized) will [MQTT-3.1.2-8].
    good.stream.destroy();
    expect(await box.next()).toMatchObject({ topic: "devices/d1/events/offline", payload: "gone" });
    await watcher.endAsync();
  });

  it("does not deliver retained or live messages on topics the device may not receive", async () => {
    const writer = connected(await connectAs("writer"));
    await writer.publishAsync("sensors/secret/key", "s3cret", { qos: 1, retain: true });
    await writer.publishAsync("sensors/public/temp", "21", { qos: 1, retain: true });
    const reader = connected(await connectAs("reader"));
    const box = inbox(reader);
    await reader.subscribeAsync("sensors/#", { qos: 1 });
    const first = await box.next();
    expect(first).toMatchObject({ topic: "sensors/public/temp", payload: "21" });
    await writer.publishAsync("sensors/secret/key", "live-secret", { qos: 1 });
    await writer.publishAsync("sensors/public/temp", "22", { qos: 1 });
    expect(await box.next()).toMatchObject({ topic: "sensors/public/temp", payload: "22" });
    await settle();
    expect(box.messages.map((m) => m.topic)).not.toContain("sensors/secret/key");
    const event = await tb.events.waitFor((e) => e.type === "acl.denied" && e.subject === "reader" && e.data?.action === "receive");
    expect(event.data?.topic).toBe("sensors/secret/key");
    await writer.endAsync();
    await reader.endAsync();
  });

  it("disconnects on a payload over the limit", async () => {
    const client = connected(await connectAs("big"));
    const gone = closed(client);
    client.publish("devices/big/telemetry/blob", Buffer.alloc(2048, 1));
    await gone;
    const event = await tb.events.waitFor((e) => e.type === "broker.limit_exceeded" && e.subject === "big");
    expect(event.data).toMatchObject({ limit: "payload_size", size: 2048 });
  });

  it("drops a connection announcing an oversized packet before buffering it (even before CONNECT completes)", async () => {
    const socket = tlsConnect({ host: "127.0.0.1", port: tb.port, ca: pki.chainPem, servername: "localhost" });
    await new Promise<void>((resolve, reject) => socket.once("secureConnect", () => resolve()).once("error", reject));
    const closedSocket = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => undefined);
    // CONNECT with a remaining length of 268,435,455 bytes (the MQTT maximum), then a stream of junk.
    socket.write(Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f]));
    const junk = Buffer.alloc(64 * 1024, 0x41);
    for (let i = 0; i < 64 && !socket.destroyed; i++) socket.write(junk);
    await closedSocket;
    expect(await counterValue(tb.broker.metrics.denials, { action: "packet", reason: "packet_too_large" })).toBeGreaterThanOrEqual(1);
  });

  it("drops publishes over the rate limit and then disconnects", async () => {
    const client = connected(await connectAs("fast"));
    const gone = closed(client);
    for (let i = 0; i < 40 && client.connected; i++) client.publish("devices/fast/telemetry/t", String(i));
    await gone;
    const event = await tb.events.waitFor((e) => e.type === "broker.limit_exceeded" && e.subject === "fast");
    expect(event.data).toMatchObject({ limit: "message_rate", perSecond: 5 });
    expect(await counterValue(tb.broker.metrics.denials, { action: "publish", reason: "rate_limited" })).toBeGreaterThan(0);
  });

  it("narrows a live session to the quarantine role when the device is quarantined", async () => {
    const q = connected(await connectAs("q1"));
    const box = inbox(q);
    await q.subscribeAsync("devices/q1/commands/#", { qos: 1 });
    const writer = connected(await connectAs("d2"));
    tb.directory.update("q1", { status: "quarantined" });
    tb.feed.push({ kind: "device.status", subject: "q1", data: { from: "active", to: "quarantined" } });
    await tb.events.waitFor((e) => e.type === "acl.denied" && e.subject === "q1" && e.data?.reason === "policy_changed");
    expect(q.connected).toBe(true);
    // A command for q1 published by the broker side no longer reaches it (subscription removed).
    const admin = connected(await connectAs("writer"));
    await admin.publishAsync("devices/q1/commands/x", "1", { qos: 1 }).catch(() => undefined);
    await settle();
    expect(box.messages).toHaveLength(0);
    // It may still report its status; telemetry is denied now.
    await q.publishAsync("devices/q1/status", "quarantined-ok", { qos: 1 });
    await q.publishAsync("devices/q1/telemetry/t", "x", { qos: 1 });
    await tb.events.waitFor((e) => e.type === "acl.denied" && e.subject === "q1" && e.data?.topic === "devices/q1/telemetry/t");
    expect(tb.events.events.some((e) => e.type === "acl.denied" && e.subject === "q1" && e.data?.topic === "devices/q1/status")).toBe(false);
    await Promise.all([q.endAsync(), writer.endAsync(), admin.endAsync()]);
  });

  it("closes the session of a device that is suspended", async () => {
    const s = connected(await connectAs("s1"));
    await tb.events.waitFor((e) => e.type === "device.connected" && e.subject === "s1");
    const gone = closed(s);
    tb.directory.update("s1", { status: "suspended" });
    tb.feed.push({ kind: "device.status", subject: "s1", data: { from: "active", to: "suspended" } });
    await gone;
    const event = await tb.events.waitFor((e) => e.type === "device.disconnected" && e.subject === "s1");
    expect(event.data?.reason).toBe("device_suspended");
  });

  it("removes subscriptions that a role change no longer allows", async () => {
    const r = connected(await connectAs("r1"));
    expect(await subscribeGranted(r, ["devices/r1/commands/#"])).toEqual([0]);
    tb.policy.unassign("device", "device", "r1");
    tb.feed.push({ kind: "role.assignment", subject: "device", data: { op: "unassigned", kind: "device", target: "r1" } });
    const event = await tb.events.waitFor((e) => e.type === "acl.denied" && e.subject === "r1" && e.data?.reason === "policy_changed");
    expect(event.data).toMatchObject({ topic: "devices/r1/commands/#", removed: true });
    await r.endAsync();
  });
});

describe.skipIf(!ok)("broker: temporary bans and the loopback plaintext listener", () => {
  const tmp = tempDir("moat-broker-ban-");
  let pki: TestPki;
  let tb: TestBroker;

  beforeAll(async () => {
    pki = createTestPki(tmp.path);
    tb = await startTestBroker(pki, { authFailureLimit: 3, banSeconds: 60, mqttPlainPort: 0 });
  });

  afterAll(async () => {
    await tb?.close();
    tmp.cleanup();
  });

  it("flags the plaintext listener and binds it to loopback only", async () => {
    const event = await tb.events.waitFor((e) => e.type === "config.insecure_listener");
    expect(event.data).toMatchObject({ host: "127.0.0.1", port: tb.broker.ports.plain });
  });

  it("accepts a token on the plaintext listener (no certificates there)", async () => {
    const secret = randomBytes(32);
    tb.directory.put({ id: "plain1", hmacSecrets: [{ secret, notAfter: null }] });
    tb.policy.assign("device", "device", "plain1");
    const now = Math.floor(Date.now() / 1000);
    const password = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("plain1").setAudience("moat-mqtt").setIssuedAt(now).setExpirationTime(now + 600).sign(secret);
    const result = await connectMqtt(tb.broker.ports.plain!, pki, { clientId: "plain1", username: "plain1", password }, "mqtt");
    expect(result.ok).toBe(true);
    if (result.ok) await result.client.endAsync();
    const event = await tb.events.waitFor((e) => e.type === "device.connected" && e.subject === "plain1");
    expect(event.data?.listener).toBe("plain");
  });

  it("bans a scanning address for junk, never for a device with a valid certificate or token behind it", async () => {
    const from = { localAddress: "127.0.0.7" };
    // A scan-like burst: connections without any credential, each with another client id.
    for (let i = 0; i < 3; i++) expect(await connectMqtt(tb.port, pki, { ...from, clientId: `probe-${i}` })).toMatchObject({ ok: false });
    await tb.events.waitFor((e) => e.type === "auth.banned" && e.subject === "addr:127.0.0.7");
    // More junk is refused as banned, before any lookup.
    expect(await connectMqtt(tb.port, pki, { ...from, clientId: "probe-x", username: "probe-x", password: "guess" })).toMatchObject({ ok: false, returnCode: 5 });
    await tb.events.waitFor((e) => e.type === "auth.failed" && e.data?.reason === "banned" && e.data?.address === "127.0.0.7");
    // A device with a valid certificate behind the same address connects.
    const cert = pki.device("good");
    tb.directory.put({ id: "good", certSerials: [cert.serial] });
    tb.policy.assign("device", "device", "good");
    const result = await connectMqtt(tb.port, pki, { ...from, clientId: "good", cert: cert.certPem, key: cert.keyPem });
    expect(result.ok).toBe(true);
    if (result.ok) await result.client.endAsync();
    // So does a token device; a forged token from there is still refused.
    const secret = randomBytes(32);
    tb.directory.put({ id: "tok1", hmacSecrets: [{ secret, notAfter: null }] });
    tb.policy.assign("device", "device", "tok1");
    const now = Math.floor(Date.now() / 1000);
    const token = (key: Buffer) => new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("tok1").setAudience("moat-mqtt").setIssuedAt(now).setExpirationTime(now + 600).sign(key);
    expect(await connectMqtt(tb.port, pki, { ...from, clientId: "tok1", username: "tok1", password: Buffer.from(await token(randomBytes(32))) })).toMatchObject({ ok: false });
    const device = await connectMqtt(tb.port, pki, { ...from, clientId: "tok1", username: "tok1", password: Buffer.from(await token(secret)) });
    expect(device.ok).toBe(true);
    if (device.ok) await device.client.endAsync();
  });

  it("junk CONNECTs with a token device's client id ban the id, not the device that holds its key", async () => {
    const secret = randomBytes(32);
    tb.directory.put({ id: "jwt-dev", hmacSecrets: [{ secret, notAfter: null }] });
    tb.policy.assign("device", "device", "jwt-dev");
    // Five junk CONNECTs, each from its own address, so only the client id is banned.
    for (let i = 0; i < 5; i++)
      expect(await connectMqtt(tb.port, pki, { localAddress: `127.0.1.${i + 1}`, clientId: "jwt-dev", username: "jwt-dev", password: "not-a-token" })).toMatchObject({ ok: false });
    await tb.events.waitFor((e) => e.type === "auth.banned" && e.subject === "id:jwt-dev");
    const now = Math.floor(Date.now() / 1000);
    const password = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("jwt-dev").setAudience("moat-mqtt").setIssuedAt(now).setExpirationTime(now + 600).sign(secret);
    const result = await connectMqtt(tb.port, pki, { localAddress: "127.0.1.9", clientId: "jwt-dev", username: "jwt-dev", password: Buffer.from(password) });
    expect(result.ok).toBe(true);
    if (result.ok) await result.client.endAsync();
  });
});
