/**
 * The scanner against Moat's own HTTPS API and PKI port: the API accepts only the suites of Moat's TLS
 * policy (so the scan finds nothing to say about them), and the plain-HTTP PKI port is recognised as a
 * CRL/OCSP service and reported as information, not as an unencrypted web server.
 */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApi, PkiHttpServer } from "../../src/api/index.js";
import { runScan, type ScanResult } from "../../src/scanner/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";

const POLICY_SUITES = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"];

describe("scan of Moat's own API and PKI listeners", () => {
  let t: TestApp;
  let api: FastifyInstance;
  let pki: PkiHttpServer;
  let apiPort: number;
  let pkiPort: number;
  let result: ScanResult;

  beforeAll(async () => {
    t = await createTestApp("sqlite");
    const tls = await t.app.ca.serverTls();
    api = await buildApi(t.app, { https: { key: tls.key, cert: tls.cert, ca: tls.ca }, bodyLimitBytes: 65_536, authFailureLimit: 1000, authFailureWindowSeconds: 60 });
    await api.listen({ host: "127.0.0.1", port: 0 });
    apiPort = (api.server.address() as { port: number }).port;
    pki = new PkiHttpServer(t.app, { host: "127.0.0.1", port: 0 });
    pkiPort = (await pki.listen()).port;
    result = await runScan({ targets: ["127.0.0.1"], ports: `${apiPort},${pkiPort}`, trustedCa: [await t.app.ca.chainPem()], bannerWaitMs: 500, probeTimeoutMs: 1500, maxCredentialAttempts: 1 });
  });
  afterAll(async () => {
    await api?.close();
    await pki?.close();
    await t?.cleanup();
  });

  const portResult = (port: number) => result.hosts[0]!.ports.find((p) => p.port === port)!;

  it("records the API's accepted suites: exactly the TLS policy's, none weak, no cipher finding", () => {
    const tls = portResult(apiPort).service!.tls!;
    expect(tls.cipherSuites.map((c) => c.name).sort()).toEqual([...POLICY_SUITES].sort());
    expect(tls.cipherSuites.every((c) => c.weaknesses.length === 0)).toBe(true);
    const apiFindings = result.findings.filter((f) => f.port === apiPort).map((f) => f.id);
    expect(apiFindings.filter((id) => /suite|cipher|secrecy/.test(id))).toEqual([]);
  });

  it("reports the PKI port as a certificate status service (info), not as plain HTTP (medium)", () => {
    expect(portResult(pkiPort).service).toMatchObject({ name: "http", overTls: false, http: { revocationOnly: true } });
    const pkiFindings = result.findings.filter((f) => f.port === pkiPort);
    expect(pkiFindings.map((f) => [f.id, f.severity])).toEqual([["http-pki-revocation", "info"]]);
  });
});
