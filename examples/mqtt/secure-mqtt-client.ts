/**
 * The seed guide's SecureMQTTClient, for real: a device connecting to Moat's broker with MQTT.js over
 * mutual TLS. The server certificate is verified against Moat's CA chain *and* its host name (no
 * `rejectUnauthorized: false`, no `tls_insecure_set(True)`); the client authenticates with the device
 * certificate Moat issued, and its MQTT client id is its device id (the certificate's CN).
 *
 * Run it against `moat serve`:
 *   moat ca chain > ca.pem                                   # Moat's issuing CA + root
 *   moat cert issue --device sensor-1 --generate-key --key-out sensor-1.key --out sensor-1.pem
 *   npx tsx examples/mqtt/secure-mqtt-client.ts --host localhost --port 8883 \
 *     --ca ca.pem --cert sensor-1.pem --key sensor-1.key --device sensor-1
 *
 * Devices that cannot do mTLS but can do TLS use a token instead (see `connectWithToken`).
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { parseArgs } from "node:util";
import { SignJWT } from "jose";
import mqtt, { type MqttClient } from "mqtt";

export interface DeviceTlsIdentity {
  /** Host name or IP the broker's certificate names (checked, RFC 6125). */
  host: string;
  port?: number;
  /** Moat's CA chain (PEM): `moat ca chain`. */
  caPem: string;
  /** The device certificate and its private key (PEM). */
  certPem: string;
  keyPem: string;
  /** The device id: the certificate's CN and the MQTT client id. */
  deviceId: string;
}

export class SecureMqttClient {
  private constructor(readonly client: MqttClient, readonly deviceId: string) {}

  /** Connects with mutual TLS (TLS 1.2 or later) and MQTT 3.1.1, the protocol Moat's broker speaks. */
  static async connect(identity: DeviceTlsIdentity): Promise<SecureMqttClient> {
    const client = await mqtt.connectAsync({
      protocol: "mqtts",
      host: identity.host,
      port: identity.port ?? 8883,
      ca: identity.caPem,
      cert: identity.certPem,
      key: identity.keyPem,
      // Verify the chain and the host name; SNI carries a DNS name (never an IP, RFC 6066 §3).
      rejectUnauthorized: true,
      ...(isIP(identity.host) ? {} : { servername: identity.host }),
      clientId: identity.deviceId,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
    });
    return new SecureMqttClient(client, identity.deviceId);
  }

  /**
   * Connects over TLS without a client certificate, authenticating with a short-lived token signed by
   * a key registered for the device (`moat device key add ID --pubkey FILE`): ES256 for a P-256 key.
   */
  static async connectWithToken(options: { host: string; port?: number; caPem: string; deviceId: string; signingKeyPem: string; audience?: string }): Promise<SecureMqttClient> {
    const { createPrivateKey } = await import("node:crypto");
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256" })
      .setSubject(options.deviceId)
      .setAudience(options.audience ?? "moat-mqtt")
      .setIssuedAt(now)
      .setExpirationTime(now + 3600)
      .sign(createPrivateKey(options.signingKeyPem));
    const client = await mqtt.connectAsync({
      protocol: "mqtts",
      host: options.host,
      port: options.port ?? 8883,
      ca: options.caPem,
      rejectUnauthorized: true,
      ...(isIP(options.host) ? {} : { servername: options.host }),
      clientId: options.deviceId,
      username: options.deviceId,
      password: token,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    return new SecureMqttClient(client, options.deviceId);
  }

  /** Publishes telemetry with QoS 1 under the device's own topic (what the built-in `device` role allows). */
  async publishTelemetry(name: string, payload: string | Buffer): Promise<void> {
    await this.client.publishAsync(`devices/${this.deviceId}/telemetry/${name}`, payload, { qos: 1 });
  }

  /** Receives commands addressed to this device. */
  async onCommand(handler: (name: string, payload: Buffer) => void): Promise<void> {
    const prefix = `devices/${this.deviceId}/commands/`;
    this.client.on("message", (topic, payload) => {
      if (topic.startsWith(prefix)) handler(topic.slice(prefix.length), payload);
    });
    await this.client.subscribeAsync(`${prefix}#`, { qos: 1 });
  }

  close(): Promise<void> {
    return this.client.endAsync();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { host: { type: "string", default: "localhost" }, port: { type: "string", default: "8883" }, ca: { type: "string" }, cert: { type: "string" }, key: { type: "string" }, device: { type: "string" } },
  });
  if (!values.ca || !values.cert || !values.key || !values.device) {
    process.stderr.write("usage: secure-mqtt-client.ts --ca ca.pem --cert device.pem --key device.key --device ID [--host localhost] [--port 8883]\n");
    process.exit(2);
  }
  const device = await SecureMqttClient.connect({
    host: values.host!,
    port: Number(values.port),
    caPem: readFileSync(values.ca, "utf8"),
    certPem: readFileSync(values.cert, "utf8"),
    keyPem: readFileSync(values.key, "utf8"),
    deviceId: values.device,
  });
  await device.publishTelemetry("temperature", JSON.stringify({ celsius: 23.5, at: new Date().toISOString() }));
  process.stdout.write(`published devices/${values.device}/telemetry/temperature over mTLS\n`);
  await device.close();
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main();
