/**
 * examples/mqtt/secure-mqtt-client.ts against a live broker: mTLS with host-name verification, the
 * token variant, commands in both directions, and a refusal when the host name does not match.
 */
import { generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SecureMqttClient } from "../../examples/mqtt/secure-mqtt-client.js";
import { requireCommand } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";
import { connectMqtt, startTestBroker, type TestBroker } from "./helpers/harness.js";
import { createTestPki, type IssuedCert, type TestPki } from "./helpers/test-pki.js";

const ok = requireCommand("openssl", "openssl");

describe.skipIf(!ok)("examples/mqtt: SecureMqttClient", () => {
  const tmp = tempDir("moat-broker-example-");
  let pki: TestPki;
  let tb: TestBroker;
  let elsewhere: TestBroker;
  let sensor: IssuedCert;
  let commander: IssuedCert;
  const signing = generateKeyPairSync("ec", { namedCurve: "P-256" });

  beforeAll(async () => {
    pki = createTestPki(tmp.path);
    sensor = pki.device("sensor-1");
    commander = pki.device("commander");
    tb = await startTestBroker(pki);
    // The same certificate served on another loopback address that it does not name.
    elsewhere = await startTestBroker(pki, { host: "127.0.0.2" }, { directory: tb.directory, policy: tb.policy });
    tb.directory.put({ id: "sensor-1", certSerials: [sensor.serial], publicKeys: [{ pem: signing.publicKey.export({ format: "pem", type: "spki" }).toString(), source: "registered" }] });
    tb.directory.put({ id: "commander", certSerials: [commander.serial] });
    tb.policy.addRole({ name: "commander", rules: [{ effect: "allow", action: "publish", resource: "devices/+/commands/#" }] });
    tb.policy.assign("device", "device", "sensor-1");
    tb.policy.assign("commander", "device", "commander");
  });

  afterAll(async () => {
    await tb?.close();
    await elsewhere?.close();
    tmp.cleanup();
  });

  it("publishes telemetry and receives a command over mTLS, verifying the broker's host name", async () => {
    const device = await SecureMqttClient.connect({ host: "localhost", port: tb.port, caPem: pki.chainPem, certPem: sensor.certPem, keyPem: sensor.keyPem, deviceId: "sensor-1" });
    await device.publishTelemetry("temperature", '{"celsius":23.5}');
    const command = new Promise<[string, string]>((resolve) => void device.onCommand((name, payload) => resolve([name, payload.toString()])));
    await new Promise((r) => setTimeout(r, 100));
    const sender = await connectMqtt(tb.port, pki, { clientId: "commander", cert: commander.certPem, key: commander.keyPem });
    if (!sender.ok) throw new Error(sender.message);
    await sender.client.publishAsync("devices/sensor-1/commands/reboot", "now", { qos: 1 });
    expect(await command).toEqual(["reboot", "now"]);
    await sender.client.endAsync();
    await device.close();
    expect(tb.events.of("acl.denied").filter((e) => e.subject === "sensor-1")).toHaveLength(0);
  });

  it("connects with a token signed by the device's registered key", async () => {
    const device = await SecureMqttClient.connectWithToken({ host: "localhost", port: tb.port, caPem: pki.chainPem, deviceId: "sensor-1", signingKeyPem: signing.privateKey.export({ format: "pem", type: "pkcs8" }).toString() });
    await device.publishTelemetry("humidity", "40");
    await device.close();
    const event = await tb.events.waitFor((e) => e.type === "device.connected" && e.subject === "sensor-1" && e.data?.method === "jwt-key");
    expect(event.data?.listener).toBe("tls");
  });

  it("refuses a broker whose certificate does not name the host it was reached at", async () => {
    await expect(
      SecureMqttClient.connect({ host: "127.0.0.2", port: elsewhere.port, caPem: pki.chainPem, certPem: sensor.certPem, keyPem: sensor.keyPem, deviceId: "sensor-1" }),
    ).rejects.toThrow(/altnames|IP: 127\.0\.0\.2 is not in the cert's list/i);
  });
});
