import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startMqttBroker } from "../../src/serve.js";
import { runScan, type ScanResult } from "../../src/scanner/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { freePort } from "../../src/lib/free-port.js";


describe("scan of Moat's own MQTT broker (mTLS)", () => {
  let t: TestApp;
  let broker: Awaited<ReturnType<typeof startMqttBroker>>;
  let port: number;
  let result: ScanResult;

  beforeAll(async () => {
    port = await freePort();
    t = await createTestApp("sqlite", { "broker.mqttPort": port, apiPort: 0, pkiPort: 0 });
    broker = await startMqttBroker(t.app, pino({ level: "silent" }));
    result = await runScan({ targets: ["127.0.0.1"], ports: String(port), trustedCa: [await t.app.ca.chainPem()], bannerWaitMs: 500, probeTimeoutMs: 1500 });
  });
  afterAll(async () => {
    await broker?.close();
    await t?.cleanup();
  });

  it("produces no high or critical finding", () => {
    expect(result.hosts[0]!.ports.map((p) => p.port)).toEqual([port]);
    expect(result.findings.filter((f) => f.severity === "high" || f.severity === "critical")).toEqual([]);
  });

  it("recognises MQTT inside TLS, refused without credentials, and no default login works", () => {
    const service = result.hosts[0]!.ports[0]!.service!;
    expect(service).toMatchObject({ name: "mqtt", overTls: true, mqtt: { anonymousReturnCode: 5 } });
    expect(service.credentials).toEqual({ service: "mqtt", attempts: 10 });
  });

  it("sees TLS 1.2+ only and a certificate that chains to the Moat CA and names 127.0.0.1", () => {
    const tls = result.hosts[0]!.ports[0]!.service!.tls!;
    expect(tls.versionsAccepted.every((v) => v === "TLSv1.2" || v === "TLSv1.3")).toBe(true);
    expect(tls.trustError).toBeNull();
    expect(tls.hostnameMatches).toBe(true);
    expect(tls.weakCipherFamilies).toEqual([]);
  });
});
