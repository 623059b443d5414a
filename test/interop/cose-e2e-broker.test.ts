import { createServer, type AddressInfo, type Server } from "node:net";
import { Aedes } from "aedes";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Keyring, PayloadOpener, PayloadSealer, deriveDeviceKey, generateAgreementKeyPair } from "../../src/crypto/index.js";
import { isMoatError } from "../../src/errors.js";

/**
 * End-to-end payload encryption demonstrated through a real MQTT broker (aedes on loopback): what
 * the broker sees of a publish holds no plaintext byte sequence, while the subscribing application
 * opens it. The keys are derived on each side from an X25519 agreement (device key ↔ app key).
 */
const TOPIC = "fleet/dev-42/telemetry";
const WINDOW = 6;

function containsAnyWindow(haystack: Buffer, needle: Buffer, size: number): boolean {
  for (let i = 0; i + size <= needle.length; i++) if (haystack.includes(needle.subarray(i, i + size))) return true;
  return false;
}

describe("E2E-encrypted MQTT publish through aedes", () => {
  let broker: Aedes;
  let server: Server;
  let url: string;
  const seenByBroker: Array<{ topic: string; payload: Buffer }> = [];
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    broker = await Aedes.createBroker();
    broker.on("publish", (packet, client) => {
      if (client && !packet.topic.startsWith("$SYS")) seenByBroker.push({ topic: packet.topic, payload: Buffer.from(packet.payload as Buffer) });
    });
    server = createServer((socket) => broker.handle(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync()));
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("the broker only relays ciphertext; the application decrypts; replays and topic moves are refused", async () => {
    const deviceKeys = generateAgreementKeyPair("X25519");
    const appKeys = generateAgreementKeyPair("X25519");
    const context = { deviceId: "dev-42", applicationId: "historian", kid: "dev-42/1" };
    const deviceRing = new Keyring().add("dev-42/1", deriveDeviceKey({ ...context, privateKey: deviceKeys.privateKey, peerPublicKey: appKeys.publicKey }));
    const appRing = new Keyring().add("dev-42/1", deriveDeviceKey({ ...context, privateKey: appKeys.privateKey, peerPublicKey: deviceKeys.publicKey }));
    const sealer = new PayloadSealer(deviceRing, 1000);
    const opener = new PayloadOpener(appRing);

    const app = await mqtt.connectAsync(url, { clientId: "historian", protocolVersion: 4 });
    const device = await mqtt.connectAsync(url, { clientId: "dev-42", protocolVersion: 4 });
    clients.push(app, device);
    const received: Array<{ topic: string; payload: Buffer }> = [];
    app.on("message", (topic, payload) => received.push({ topic, payload: Buffer.from(payload) }));
    await app.subscribeAsync("fleet/#", { qos: 1 });

    const readings = [
      JSON.stringify({ temperature: 81.5, pressure: 2.31, location: "boiler room B, Main St 12", operator: "alice@example.com" }),
      JSON.stringify({ door: "open", code: "4711-0815", note: "maintenance access granted to contractor" }),
    ];
    for (const reading of readings) await device.publishAsync(TOPIC, sealer.seal(TOPIC, Buffer.from(reading)), { qos: 1 });
    await waitUntil(() => received.length >= readings.length);

    const fromDevice = seenByBroker.filter((m) => m.topic === TOPIC);
    expect(fromDevice).toHaveLength(readings.length);
    for (const [i, reading] of readings.entries()) {
      const plaintext = Buffer.from(reading);
      const brokerView = fromDevice[i]!.payload;
      // The broker's view shares no 6-byte run with the plaintext (nor any field value).
      expect(containsAnyWindow(brokerView, plaintext, WINDOW)).toBe(false);
      for (const secret of ["alice@example.com", "4711-0815", "81.5", "boiler"]) expect(brokerView.includes(Buffer.from(secret))).toBe(false);
      // The application opens exactly the plaintext.
      const opened = opener.open(received[i]!.topic, received[i]!.payload);
      expect(opened.plaintext.toString()).toBe(reading);
      expect(opened.seq).toBe(1000 + i);
    }

    // Whoever controls the broker can replay a captured message, or move it to another topic: both are refused.
    await device.publishAsync(TOPIC, fromDevice[0]!.payload, { qos: 1 });
    await device.publishAsync("fleet/dev-43/telemetry", fromDevice[1]!.payload, { qos: 1 });
    await waitUntil(() => received.length >= readings.length + 2);
    const verdicts = received.slice(readings.length).map(({ topic, payload }) => {
      try {
        opener.open(topic, payload);
        return "opened";
      } catch (error) {
        return isMoatError(error) ? error.code : String(error);
      }
    });
    expect(verdicts).toEqual(["COSE_REPLAYED", "COSE_TOPIC_MISMATCH"]);
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for MQTT messages");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
