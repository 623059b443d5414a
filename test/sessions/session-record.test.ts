/**
 * The live-session record (src/sessions) over a real installation on both dialects: fed by real audit
 * events, and by the real embedded broker with MQTT.js clients (SQLite).
 */
import { createPrivateKey } from "node:crypto";
import mqtt from "mqtt";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/core.js";
import { startMqttBroker } from "../../src/serve.js";
import { SessionRecorder } from "../../src/sessions/index.js";
import { KyselySessionRepository } from "../../src/store/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { forEachDialect } from "../helpers/dialects.js";
import { freePort } from "../../src/lib/free-port.js";


const connected = (device: string, session: string, extra: Record<string, unknown> = {}) => ({
  type: "device.connected",
  severity: "info" as const,
  actor: `device:${device}`,
  subject: device,
  data: { protocol: "mqtt", method: "mtls", address: "192.0.2.7", listener: "tls", node: "node-a", session, serial: "0a1b", ...extra },
});
const disconnected = (device: string, session: string) => ({ type: "device.disconnected", severity: "info" as const, actor: `device:${device}`, subject: device, data: { session, node: "node-a", reason: "client" } });

forEachDialect("live MQTT sessions from device.connected / device.disconnected", (dialect) => {
  let t: TestApp;
  let app: App;
  let recorder: SessionRecorder;

  beforeAll(async () => {
    t = await createTestApp(dialect);
    app = t.app;
    for (const id of ["s1", "s2", "s3"]) await app.devices.create({ id, status: "active" }, "test");
  });
  afterAll(async () => t?.cleanup());
  afterEach(async () => recorder?.stop());

  it("lists a connected session with its address, serial and node, and forgets it at disconnect", async () => {
    recorder = new SessionRecorder(new KyselySessionRepository(app.store.db));
    await recorder.start(app.audit);
    await app.audit.emit(connected("s1", "sess-1"));
    await recorder.settled();
    const [row] = await app.sessions.list({ deviceId: "s1" });
    expect(row).toMatchObject({ sessionId: "sess-1", deviceId: "s1", clientId: "s1", nodeId: "node-a", address: "192.0.2.7", certSerial: "0a1b", method: "mtls" });
    expect(await app.sessions.count()).toBe(1);
    await app.audit.emit(disconnected("s1", "sess-1"));
    await recorder.settled();
    expect(await app.sessions.list({ deviceId: "s1" })).toEqual([]);
  });

  it("does not record a connect that arrives after its own disconnect", async () => {
    recorder = new SessionRecorder(new KyselySessionRepository(app.store.db));
    await recorder.start(app.audit);
    recorder.take(disconnected("s2", "late"));
    recorder.take(connected("s2", "late"));
    await recorder.settled();
    expect(await app.sessions.list({ deviceId: "s2" })).toEqual([]);
  });

  it("records a client-id takeover, whether the old session is still listed or the event says so", async () => {
    recorder = new SessionRecorder(new KyselySessionRepository(app.store.db));
    await recorder.start(app.audit);
    recorder.take(connected("s3", "old", { node: "node-b", address: "192.0.2.1" }));
    recorder.take(connected("s3", "new", { address: "198.51.100.9" }));
    recorder.take(connected("s3", "newer", { replaced: { session: "gone-already", address: "203.0.113.5" } }));
    await recorder.settled();
    const takeovers = await app.sessions.takeovers({ deviceId: "s3" });
    expect(takeovers.map((x) => [x.previousSession, x.session])).toEqual(
      expect.arrayContaining([
        ["old", "new"],
        ["old", "newer"],
        ["new", "newer"],
        ["gone-already", "newer"],
      ]),
    );
    expect(takeovers.find((x) => x.session === "new")).toMatchObject({ previousAddress: "192.0.2.1", previousNode: "node-b", address: "198.51.100.9" });
  });

  it("stops counting the sessions of a node that stopped beating, and the next recorder deletes them", async () => {
    let clock = Date.now();
    const repo = new KyselySessionRepository(app.store.db);
    recorder = new SessionRecorder(repo, { heartbeatMs: 1000, now: () => clock });
    await recorder.start(app.audit);
    recorder.take(connected("s1", "crashed", { node: "dead-node" }));
    await recorder.settled();
    expect((await app.sessions.list({ deviceId: "s1" })).map((s) => s.sessionId)).toEqual(["crashed"]);
    // The "crash": the recorder goes away without reporting disconnects; its node's heartbeat ages.
    (recorder as unknown as { nodes: Set<string> }).nodes.clear();
    await recorder.stop();
    await app.store.db.updateTable("mqtt_nodes").set({ heartbeat_at: new Date(clock - 3_600_000).toISOString() }).where("node_id", "=", "dead-node").execute();
    expect(await app.sessions.list({ deviceId: "s1" })).toEqual([]);
    expect(await app.store.db.selectFrom("mqtt_sessions").select("session_id").where("session_id", "=", "crashed").execute()).toHaveLength(1);
    clock = Date.now();
    recorder = new SessionRecorder(repo, { heartbeatMs: 1000, now: () => clock });
    await recorder.start(app.audit);
    expect(await app.store.db.selectFrom("mqtt_sessions").select("session_id").where("session_id", "=", "crashed").execute()).toHaveLength(0);
  });

  it("removes its own node's sessions when it stops (a stopped node holds none)", async () => {
    recorder = new SessionRecorder(new KyselySessionRepository(app.store.db));
    await recorder.start(app.audit);
    recorder.take(connected("s2", "on-stop", { node: "stopping" }));
    await recorder.settled();
    expect(await app.sessions.list({ deviceId: "s2" })).toHaveLength(1);
    await recorder.stop();
    expect(await app.sessions.list({ deviceId: "s2" })).toEqual([]);
  });
});

describe("live MQTT sessions from the embedded broker", () => {
  let t: TestApp;
  let app: App;
  let node: Awaited<ReturnType<typeof startMqttBroker>>;
  let recorder: SessionRecorder;
  let port: number;

  beforeAll(async () => {
    port = await freePort();
    t = await createTestApp("sqlite", { "broker.mqttPort": port, apiPort: 0, pkiPort: 0 });
    app = t.app;
    recorder = new SessionRecorder(new KyselySessionRepository(app.store.db));
    await recorder.start(app.audit);
    node = await startMqttBroker(app, pino({ level: "silent" }));
  });
  afterAll(async () => {
    await node?.close();
    await recorder?.stop();
    await t?.cleanup();
  });

  it("shows who is connected with which certificate on which node, and a client-id takeover", async () => {
    await app.devices.create({ id: "live-1" }, "test");
    const issued = await app.pki.certificates.issueWithGeneratedKey({ deviceId: "live-1", actor: "test" });
    const key = createPrivateKey({ key: issued.privateKeyPkcs8Der, format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }).toString();
    const options = { ca: await app.ca.chainPem(), cert: issued.certificatePem, key, clientId: "live-1", protocolVersion: 4 as const, reconnectPeriod: 0 };
    const first = await mqtt.connectAsync(`mqtts://localhost:${port}`, options);
    const waitFor = async (predicate: () => Promise<boolean>) => {
      for (let i = 0; i < 200 && !(await predicate()); i++) await new Promise((r) => setTimeout(r, 25));
    };
    await waitFor(async () => (await app.sessions.list({ deviceId: "live-1" })).length === 1);
    const [row] = await app.sessions.list({ deviceId: "live-1" });
    expect(row).toMatchObject({ deviceId: "live-1", clientId: "live-1", nodeId: node.broker.nodeId, certSerial: issued.serialHex, method: "mtls" });
    expect(row!.address).toMatch(/127\.0\.0\.1/);

    const firstClosed = new Promise<void>((resolve) => first.once("close", () => resolve()));
    const second = await mqtt.connectAsync(`mqtts://localhost:${port}`, options);
    await firstClosed;
    await waitFor(async () => (await app.sessions.takeovers({ deviceId: "live-1" })).length === 1);
    const [takeover] = await app.sessions.takeovers({ deviceId: "live-1" });
    expect(takeover).toMatchObject({ clientId: "live-1", previousSession: row!.sessionId });
    await waitFor(async () => (await app.sessions.list({ deviceId: "live-1" }))[0]?.sessionId === takeover!.session);
    expect((await app.sessions.list({ deviceId: "live-1" })).map((s) => s.sessionId)).toEqual([takeover!.session]);
    const disconnectEvent = (await app.audit.list({ subject: "live-1", type: "device.disconnected" }))[0];
    expect(disconnectEvent?.data).toMatchObject({ reason: "takeover", session: row!.sessionId });

    await second.endAsync();
    await waitFor(async () => (await app.sessions.list({ deviceId: "live-1" })).length === 0);
    expect(await app.sessions.list({ deviceId: "live-1" })).toEqual([]);
  });
});
