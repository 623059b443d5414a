/**
 * Start-up refusals: unusable TLS material, a port in use, an unreachable Redis. Each is a specific
 * MoatError, and nothing is left listening.
 */
import { createServer, type AddressInfo, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InMemoryDeviceDirectory, startBroker, type BrokerSettings } from "../../src/broker/index.js";
import { isDeviceId } from "../../src/identity/index.js";
import { compilePolicy } from "../../src/policy/index.js";
import { requireCommand } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";
import { createTestPki, type TestPki } from "./helpers/test-pki.js";

const ok = requireCommand("openssl", "openssl");

describe.skipIf(!ok)("broker: start-up refusals", () => {
  const tmp = tempDir("moat-broker-startup-");
  let pki: TestPki;
  let occupied: Server;
  let occupiedPort: number;

  const start = (material: { certPem: string; keyPem: string }, settings: Partial<BrokerSettings>) => {
    const directory = new InMemoryDeviceDirectory(isDeviceId);
    return startBroker(
      {
        directory,
        revocationSource: directory,
        decider: compilePolicy({ roles: [], assignments: [] }),
        events: { emit: async () => undefined },
        tls: { load: async () => ({ ...material, caPems: [pki.chainPem], issuingCaPems: [pki.issuing.certPem] }) },
      },
      { host: "127.0.0.1", mqttPort: 0, ...settings },
    );
  };

  beforeAll(async () => {
    pki = createTestPki(tmp.path);
    occupied = createServer();
    await new Promise<void>((resolve) => occupied.listen(0, "127.0.0.1", () => resolve()));
    occupiedPort = (occupied.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => occupied.close(() => resolve()));
    tmp.cleanup();
  });

  it("refuses a server key that does not match the certificate", async () => {
    const other = pki.device("other");
    await expect(start({ certPem: pki.server.certPem, keyPem: other.keyPem }, {})).rejects.toMatchObject({ code: "BROKER_TLS_MATERIAL_INVALID" });
  });

  it("refuses a port that is already in use", async () => {
    await expect(start({ certPem: pki.server.certPem, keyPem: pki.server.keyPem }, { mqttPort: occupiedPort })).rejects.toMatchObject({ code: "LISTEN_FAILED", detail: { setting: "broker.mqttPort" } });
  });

  it("refuses to run alone when Redis is configured but unreachable", async () => {
    // The occupied port answers TCP but not the Redis protocol; a closed port refuses outright.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", () => resolve()));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    await expect(start({ certPem: pki.server.certPem, keyPem: pki.server.keyPem }, { redisUrl: `redis://127.0.0.1:${port}` })).rejects.toMatchObject({ code: "BROKER_REDIS_UNREACHABLE" });
  });
});
