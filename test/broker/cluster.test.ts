/**
 * Two broker nodes sharing Redis (mqemitter-redis, aedes-persistence-redis and Moat's enforcement
 * channel). Each node gets its own change feed here, so a revocation reaching only node A's feed can
 * close a session on node B only through the Redis broadcast.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireCommand, requirement } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";
import { closed, connectMqtt, inbox, startTestBroker, TestChangeFeed, type TestBroker } from "./helpers/harness.js";
import { createTestPki, type TestPki } from "./helpers/test-pki.js";

const REDIS_URL = process.env.MOAT_TEST_REDIS_URL ?? "redis://127.0.0.1:6379/0";

async function redisAnswers(): Promise<boolean> {
  const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  probe.on("error", () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

const ok = requireCommand("openssl", "openssl") && requirement("Redis", await redisAnswers(), `no Redis answers at ${REDIS_URL}; start it with: redis-server --daemonize yes`);

describe.skipIf(!ok)("broker: two nodes over Redis", () => {
  const tmp = tempDir("moat-broker-cluster-");
  const run = randomBytes(4).toString("hex");
  const settings = { redisUrl: REDIS_URL, redisNamespace: `moat-test-${run}`, authFailureLimit: 1000 };
  let pki: TestPki;
  let nodeA: TestBroker;
  let nodeB: TestBroker;
  let feedA: TestChangeFeed;
  const sub = `sub-${run}`;
  const pub = `pub-${run}`;

  beforeAll(async () => {
    pki = createTestPki(tmp.path);
    feedA = new TestChangeFeed();
    nodeA = await startTestBroker(pki, settings, { feed: feedA });
    // Same directory and policy (the shared store), but node B's feed never sees node A's changes.
    nodeB = await startTestBroker(pki, settings, { directory: nodeA.directory, policy: nodeA.policy, feed: new TestChangeFeed() });
    nodeA.policy.addRole({ name: "commander", rules: [{ effect: "allow", action: "publish", resource: "devices/+/commands/#" }] });
  });

  afterAll(async () => {
    await nodeA?.close();
    await nodeB?.close();
    tmp.cleanup();
  });

  it("delivers a publish made on node B to a subscriber on node A", async () => {
    const subCert = pki.device(sub);
    const pubCert = pki.device(pub);
    nodeA.directory.put({ id: sub, certSerials: [subCert.serial] });
    nodeA.directory.put({ id: pub, certSerials: [pubCert.serial] });
    nodeA.policy.assign("device", "device", sub);
    nodeA.policy.assign("commander", "device", pub);
    const a = await connectMqtt(nodeA.port, pki, { clientId: sub, cert: subCert.certPem, key: subCert.keyPem });
    const b = await connectMqtt(nodeB.port, pki, { clientId: pub, cert: pubCert.certPem, key: pubCert.keyPem });
    if (!a.ok || !b.ok) throw new Error("connect failed");
    const box = inbox(a.client);
    await a.client.subscribeAsync(`devices/${sub}/commands/#`, { qos: 1 });
    // Subscriptions travel through Redis; retry the publish until node A has learnt of it.
    let received: { topic: string; payload: string } | null = null;
    for (let attempt = 0; attempt < 10 && !received; attempt++) {
      await b.client.publishAsync(`devices/${sub}/commands/ping`, `hello-${attempt}`, { qos: 1 });
      received = await box.next(1000).catch(() => null);
    }
    expect(received?.topic).toBe(`devices/${sub}/commands/ping`);
    expect(received?.payload).toMatch(/^hello-/);
    await a.client.endAsync();
    await b.client.endAsync();
  });

  it("closes a session on node B when the revocation reaches only node A", async () => {
    const id = `victim-${run}`;
    const cert = pki.device(id);
    nodeA.directory.put({ id, certSerials: [cert.serial] });
    nodeA.policy.assign("device", "device", id);
    const result = await connectMqtt(nodeB.port, pki, { clientId: id, cert: cert.certPem, key: cert.keyPem });
    if (!result.ok) throw new Error(result.message);
    await nodeB.events.waitFor((e) => e.type === "device.connected" && e.subject === id);
    const gone = closed(result.client);
    nodeA.directory.revoke(cert.serial);
    feedA.push({ kind: "cert.revoked", subject: cert.serial, data: { serial: cert.serial, deviceId: id, issuer: "01", reason: "keyCompromise", revokedAt: new Date().toISOString() } });
    await gone;
    const event = await nodeB.events.waitFor((e) => e.type === "device.disconnected" && e.subject === id);
    expect(event.data).toMatchObject({ reason: "cert_revoked", node: nodeB.broker.nodeId });
    // And node B now refuses the certificate at CONNECT as well.
    const again = await connectMqtt(nodeB.port, pki, { clientId: id, cert: cert.certPem, key: cert.keyPem });
    expect(again).toMatchObject({ ok: false, returnCode: 5 });
  });
});
