/**
 * Every TLS listener Moat opens follows one policy: TLS 1.3, or TLS 1.2 with ECDHE and AES-GCM or
 * ChaCha20-Poly1305. Checked with openssl s_client offering one suite at a time.
 */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApi } from "../../src/api/index.js";
import { createLogger, startMqttBroker } from "../../src/serve.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { opensslHandshake } from "../helpers/openssl-tls.js";
import { requireCommand } from "../helpers/requirements.js";

const ok = requireCommand("openssl", "openssl");

/** TLS 1.2 suites the policy refuses, one per weakness (the server certificate is ECDSA). */
const REFUSED_TLS12 = [
  "ECDHE-ECDSA-AES128-SHA", // CBC with a SHA-1 MAC
  "ECDHE-ECDSA-AES256-SHA384", // CBC
  "ECDHE-ECDSA-AES128-CCM8", // CCM with a short tag
  "ECDHE-ECDSA-AES128-CCM",
  "ECDHE-ECDSA-ARIA128-GCM-SHA256",
  "ECDHE-ECDSA-CAMELLIA128-SHA256",
  "AES128-GCM-SHA256", // static RSA key exchange, no forward secrecy
  "DHE-RSA-AES128-GCM-SHA256", // finite-field DH
];
const ACCEPTED_TLS12 = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"];

describe.skipIf(!ok)("one TLS policy on every listener (openssl s_client)", () => {
  let t: TestApp;
  let api: FastifyInstance;
  let closeBroker: () => Promise<void>;
  const ports: Record<string, number> = {};

  beforeAll(async () => {
    t = await createTestApp("sqlite", { "broker.mqttPort": 0, "broker.mqttWssPort": 0 });
    const tls = await t.app.ca.serverTls();
    api = await buildApi(t.app, { https: { key: tls.key, cert: tls.cert, ca: tls.ca }, bodyLimitBytes: 1_048_576, authFailureLimit: 10, authFailureWindowSeconds: 60 });
    await api.listen({ host: "127.0.0.1", port: 0 });
    ports["API and EST (HTTPS)"] = (api.server.address() as { port: number }).port;
    const mqtt = await startMqttBroker(t.app, createLogger(t.app.config));
    closeBroker = mqtt.close;
    ports["MQTT over TLS"] = mqtt.broker.ports.tls!;
    ports["MQTT over secure WebSockets"] = mqtt.broker.ports.wss!;
  });

  afterAll(async () => {
    await api?.close();
    await closeBroker?.();
    await t?.cleanup();
  });

  for (const listener of ["API and EST (HTTPS)", "MQTT over TLS", "MQTT over secure WebSockets"]) {
    it(`${listener}: refuses CBC, CCM, ARIA, Camellia and non-ECDHE suites; accepts ECDHE with AEAD and TLS 1.3`, async () => {
      const port = ports[listener]!;
      for (const cipher of REFUSED_TLS12) expect({ cipher, ...(await opensslHandshake(port, ["-tls1_2", "-cipher", `${cipher}:@SECLEVEL=0`])) }).toMatchObject({ cipher, ok: false });
      expect(await opensslHandshake(port, ["-tls1_3", "-ciphersuites", "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256"])).toMatchObject({ ok: false });
      expect(await opensslHandshake(port, ["-tls1_1"])).toMatchObject({ ok: false });
      for (const cipher of ACCEPTED_TLS12) expect(await opensslHandshake(port, ["-tls1_2", "-cipher", cipher])).toEqual({ ok: true, cipher, protocol: "TLSv1.2" });
      expect(await opensslHandshake(port, ["-tls1_3"])).toEqual({ ok: true, cipher: "TLS_AES_256_GCM_SHA384", protocol: "TLSv1.3" });
    });
  }
});
