/**
 * The benches' raw-protocol load generator (bench/load/) against a real broker: a Mosquitto instance of
 * the test's own (mTLS, ACL file), and MQTT.js as a second implementation reading what it frames. If the
 * hand-written framing were wrong, the broker would drop the connection or the other client would
 * receive nothing, and the bench figures built on it would mean nothing.
 */
import { existsSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LoadConnection, type Target } from "../../bench/load/connection.js";
import { PublishTemplate, publishTopic } from "../../bench/load/frames.js";
import { LoadGenerator, writeCredentials } from "../../bench/load/generator.js";
import { MOSQUITTO_BIN, startMosquitto, type MosquittoInstance } from "../../bench/load/mosquitto.js";
import { credentialsOf, makeBenchPki, type BenchPki } from "../../bench/load/pki.js";
import { requirement } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";

const ok = requirement("mosquitto", existsSync(MOSQUITTO_BIN), "install it with: apt-get install -y mosquitto");

describe.skipIf(!ok)("bench load generator against Mosquitto", () => {
  const tmp = tempDir("moat-loadgen-");
  let pki: BenchPki;
  let broker: MosquittoInstance;

  beforeAll(async () => {
    pki = await makeBenchPki(8);
    broker = await startMosquitto(join(tmp.path, "mosquitto"), pki);
  });
  afterAll(async () => {
    await broker?.stop();
    tmp.cleanup();
  });

  const target = (version: 4 | 5): Target => ({ host: "127.0.0.1", port: broker.port, servername: "localhost", version });
  const context = (i: number) => createSecureContext({ ca: pki.chainPem, cert: pki.devices[i]!.certPem, key: pki.deviceKeyPem });

  for (const version of [4, 5] as const) {
    it(`MQTT ${version === 4 ? "3.1.1" : "5"}: CONNECT, SUBSCRIBE, PUBLISH QoS 1 with PUBACK, delivery to the subscriber`, async () => {
      const sub = await LoadConnection.open(target(version), context(0), "dev-0");
      const pub = await LoadConnection.open(target(version), context(1), "dev-1");
      try {
        expect(await sub.subscribe("devices/dev-1/telemetry/#", 1)).toBe(1);
        const acked: number[] = [];
        const allAcked = new Promise<void>((resolve) => {
          pub.onPuback = (id) => {
            acked.push(id);
            if (acked.length === 3) resolve();
          };
        });
        const template = new PublishTemplate("devices/dev-1/telemetry/t", Buffer.from("hello"), 1, version);
        const out = Buffer.alloc(template.length * 3);
        let offset = 0;
        for (const id of [7, 8, 9]) offset = template.writeInto(out, offset, id);
        pub.socket.write(out);
        await allAcked;
        expect(acked.sort()).toEqual([7, 8, 9]);
        await expect.poll(() => sub.received).toBe(3);

        // The ACL file applies: a publish to another device's topic is not delivered. Mosquitto keeps a
        // connection's order, so once the allowed message that follows it arrives, a leak would have shown.
        const watcher = await LoadConnection.open(target(version), context(2), "dev-2");
        const topics: string[] = [];
        watcher.onPublish = (p) => topics.push(publishTopic(p));
        expect(await watcher.subscribe("devices/+/telemetry/#", 1)).toBe(1);
        const denied = new PublishTemplate("devices/dev-0/telemetry/forged", Buffer.from("x"), 1, version);
        const allowed = new PublishTemplate("devices/dev-1/telemetry/after", Buffer.from("y"), 1, version);
        const pair = Buffer.alloc(denied.length + allowed.length);
        allowed.writeInto(pair, denied.writeInto(pair, 0, 20), 21);
        pub.socket.write(pair);
        await expect.poll(() => topics.length).toBeGreaterThan(0);
        expect(topics).toEqual(["devices/dev-1/telemetry/after"]);
        await watcher.end();
      } finally {
        await Promise.all([sub.end(), pub.end()]);
      }
    });
  }

  it("MQTT.js receives what the raw publisher frames, and its publishes reach a raw subscriber", async () => {
    const client = await mqtt.connectAsync(`mqtts://localhost:${broker.port}`, { ca: pki.chainPem, cert: pki.devices[2]!.certPem, key: pki.deviceKeyPem, clientId: "dev-2", protocolVersion: 5, reconnectPeriod: 0 });
    const raw = await LoadConnection.open(target(5), context(3), "dev-3");
    try {
      await client.subscribeAsync("devices/dev-3/telemetry/#", { qos: 1 });
      const got = new Promise<[string, string]>((resolve) => client.once("message", (topic, payload) => resolve([topic, payload.toString()])));
      const template = new PublishTemplate("devices/dev-3/telemetry/x", Buffer.from("from raw"), 1, 5);
      const out = Buffer.alloc(template.length);
      template.writeInto(out, 0, 42);
      raw.socket.write(out);
      expect(await got).toEqual(["devices/dev-3/telemetry/x", "from raw"]);

      expect(await raw.subscribe("devices/dev-2/telemetry/#", 1)).toBe(1);
      await client.publishAsync("devices/dev-2/telemetry/y", "from mqtt.js", { qos: 1 });
      await expect.poll(() => raw.received).toBe(1);
    } finally {
      await client.endAsync();
      await raw.end();
    }
  });

  it("a device certificate from a CA the broker does not trust fails the open", async () => {
    const stranger = await makeBenchPki(1);
    const foreign = createSecureContext({ ca: pki.chainPem, cert: stranger.devices[0]!.certPem, key: stranger.deviceKeyPem });
    await expect(LoadConnection.open(target(4), foreign, "dev-0", { timeoutMs: 5000 })).rejects.toThrow();
  });

  it("the generator's worker processes hold connections and run a QoS 1 flow, reporting their CPU", async () => {
    const credentialsFile = writeCredentials(tmp.path, credentialsOf(pki));
    const load = await LoadGenerator.start({ workers: 2, credentialsFile, deviceCount: 8 });
    try {
      const held = await load.all("hold", { target: target(4), concurrency: 4, timeoutMs: 10_000, keepaliveSeconds: 0 });
      expect(held.map((h) => h.open)).toEqual([4, 4]);
      expect(held.every((h) => h.failed === 0)).toBe(true);
      expect((await load.all("release", { port: broker.port })).map((r) => r.closed)).toEqual([4, 4]);

      const flows = await load.all("flow", { target: target(4), pairs: 2, qos: 1, warmupMs: 200, windowMs: 500, inflight: 10, payloadBytes: 32 });
      for (const f of flows) {
        expect(f.subscribeRefused).toBe(0);
        expect(f.delivered).toBeGreaterThan(0);
        expect(f.cpuMs).toBeGreaterThan(0);
      }
    } finally {
      await load.stop();
    }
  });
});
