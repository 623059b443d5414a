import { createSocket } from "node:dgram";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TLS_SERVER_POLICY } from "../../src/crypto/index.js";
import { isMoatError } from "../../src/errors.js";
import { defaultTransport, runScan, toSarif, FINDING_RULES, type Finding, type ScanResult, type ScanTransport } from "../../src/scanner/index.js";
import { requireCommand } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";
import {
  makeTestPki,
  startAedesFixture,
  startCoapFixture,
  startHttpBasicFixture,
  startTelnetFixture,
  startTlsFixture,
  type Fixture,
  type TestPki,
} from "./fixtures.js";

/** The TLS fixtures' certificates are made with the openssl CLI. */
const hasOpenssl = requireCommand("openssl", "openssl");

/** Short waits: the fixtures are local and answer at once. */
const FAST = { bannerWaitMs: 700, probeTimeoutMs: 1500, portTimeoutMs: 1000, mqttListenMs: 300 } as const;

function countingTransport(): ScanTransport & { sockets: () => number } {
  const real = defaultTransport();
  let sockets = 0;
  return {
    sockets: () => sockets,
    connector: {
      kind: "counting",
      open: (timeoutMs) => {
        const session = real.connector.open(timeoutMs);
        return { probe: (...args) => (sockets++, session.probe(...args)), close: () => session.close() };
      },
    },
    connectTcp: (options) => (sockets++, real.connectTcp(options)),
    connectTls: (options) => (sockets++, real.connectTls(options)),
    createUdp: (type) => (sockets++, real.createUdp(type)),
  };
}

function at(result: ScanResult, port: number, transport: "tcp" | "udp" = "tcp"): Finding[] {
  return result.findings.filter((f) => f.port === port && f.transport === transport);
}

function ids(findings: Finding[]): string[] {
  return findings.map((f) => f.id).sort();
}

describe("scope guard", () => {
  it("refuses a non-loopback target before any socket exists", async () => {
    const transport = countingTransport();
    let refused: unknown;
    try {
      await runScan({ targets: ["127.0.0.1", "192.0.2.10"], ports: "1-1000", transport });
    } catch (error) {
      refused = error;
    }
    expect(isMoatError(refused, "SCAN_TARGET_OUT_OF_SCOPE")).toBe(true);
    expect((refused as Error).message).toContain("192.0.2.10");
    expect(transport.sockets()).toBe(0);
  });

  it("refuses a host name that resolves outside the scope, and a /15, without sending", async () => {
    const transport = countingTransport();
    await expect(runScan({ targets: ["printer.test"], transport, resolver: async () => ["198.51.100.4"] })).rejects.toMatchObject({ code: "SCAN_TARGET_OUT_OF_SCOPE" });
    await expect(runScan({ targets: ["10.0.0.0/15"], allow: ["10.0.0.0/8"], transport })).rejects.toMatchObject({ code: "SCAN_CIDR_TOO_LARGE" });
    await expect(runScan({ targets: ["127.0.0.1"], ports: "1-70000", transport })).rejects.toMatchObject({ code: "SCAN_PORTS_INVALID" });
    await expect(runScan({ targets: ["127.0.0.1"], concurrency: 0, transport })).rejects.toMatchObject({ code: "SCAN_OPTIONS_INVALID" });
    expect(transport.sockets()).toBe(0);
  });
});

describe("bounds", () => {
  it("stops at the time limit under a low rate and reports a partial run", async () => {
    const transport = countingTransport();
    const result = await runScan({ targets: ["127.0.0.1"], ports: "1-200", ratePerSecond: 5, concurrency: 2, timeLimitMs: 1000, detectServices: false, transport });
    expect(result.status).toBe("timed-out");
    // 5 per second with a burst of one: far fewer than the 200 ports were tried in one second.
    expect(transport.sockets()).toBeLessThan(20);
  });
});

describe("UDP", () => {
  it("reports a port answering with ICMP port-unreachable as closed, so it is not listed", async () => {
    const probe = createSocket("udp4");
    await new Promise<void>((resolve) => probe.bind(0, "127.0.0.1", resolve));
    const port = probe.address().port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const result = await runScan({ targets: ["127.0.0.1"], ports: `${port}/udp`, ...FAST });
    expect(result.hosts[0]!.ports).toEqual([]);
    expect(result.findings).toEqual([]);
  });
});

describe.skipIf(!hasOpenssl)("scan of weak loopback services", () => {
  const dir = tempDir("moat-scan-");
  let pki: TestPki;
  let telnet: Fixture, http: Fixture, anonymousMqtt: Fixture & { publishRetained(topic: string): Promise<void> }, passwordMqtt: Fixture, coap: Fixture;
  let tls10: Fixture, expired: Fixture, weakCert: Fixture;
  let result: ScanResult;
  const progress: string[] = [];

  beforeAll(async () => {
    pki = makeTestPki(dir.path);
    [telnet, http, anonymousMqtt, passwordMqtt, coap] = await Promise.all([
      startTelnetFixture(),
      startHttpBasicFixture(),
      startAedesFixture(),
      startAedesFixture({ username: "admin", password: "password" }),
      startCoapFixture(),
    ]);
    await anonymousMqtt.publishRetained("plant/line1/temperature");
    [tls10, expired, weakCert] = await Promise.all([
      // The one fixture that lowers OpenSSL's security level, to accept TLS 1.0.
      startTlsFixture({ ...pki.good, minVersion: "TLSv1", ciphers: "DEFAULT@SECLEVEL=0" }),
      // Moat's cipher policy, so the expired certificate is its only problem.
      startTlsFixture({ ...pki.expired, ...TLS_SERVER_POLICY }),
      // Also offers every suite this OpenSSL still has, anonymous (ADH/AECDH) and static RSA among them.
      startTlsFixture({ ...pki.weak, ciphers: "ALL:@SECLEVEL=0", minVersion: "TLSv1.2" }),
    ]);
    const tcp = [telnet, http, anonymousMqtt, passwordMqtt, tls10, expired, weakCert].map((f) => f.port);
    result = await runScan({
      targets: ["127.0.0.1"],
      ports: `${tcp.join(",")},${coap.port}/udp`,
      trustedCa: [pki.caPem],
      ...FAST,
      onProgress: (p) => progress.push(`${p.phase}:${p.done}/${p.total}`),
    });
  });

  afterAll(async () => {
    await Promise.all([telnet, http, anonymousMqtt, passwordMqtt, coap, tls10, expired, weakCert].filter(Boolean).map((f) => f.close()));
    dir.cleanup();
  });

  it("finds every fixture port open and names its service", () => {
    expect(result.status).toBe("completed");
    const services = new Map(result.hosts[0]!.ports.map((p) => [`${p.port}/${p.transport}`, p.service?.name]));
    expect(services.get(`${telnet.port}/tcp`)).toBe("telnet");
    expect(services.get(`${http.port}/tcp`)).toBe("http");
    expect(services.get(`${anonymousMqtt.port}/tcp`)).toBe("mqtt");
    expect(services.get(`${passwordMqtt.port}/tcp`)).toBe("mqtt");
    expect(services.get(`${coap.port}/udp`)).toBe("coap");
    expect(services.get(`${tls10.port}/tcp`)).toBe("http");
    expect(result.hosts[0]!.ports.find((p) => p.port === tls10.port)!.service!.overTls).toBe(true);
    expect(progress).toContain(`ports:${result.tcpPortCount + 1}/${result.tcpPortCount + 1}`);
  });

  it("flags Telnet as plaintext and finds its admin/admin login", () => {
    expect(ids(at(result, telnet.port))).toEqual(["default-credentials-telnet", "telnet-plaintext"]);
    const login = at(result, telnet.port).find((f) => f.id === "default-credentials-telnet")!;
    expect(login).toMatchObject({ severity: "critical", owasp: expect.arrayContaining(["I1"]), etsi: expect.arrayContaining(["5.1-1"]) });
    expect(login.evidence).toContain("admin/admin");
    expect(at(result, telnet.port).find((f) => f.id === "telnet-plaintext")!.evidence).toContain("WILL ECHO");
  });

  it("flags HTTP Basic in clear text and finds admin:admin", () => {
    expect(ids(at(result, http.port))).toEqual(["default-credentials-http", "http-basic-plaintext", "http-plaintext"]);
    expect(at(result, http.port).find((f) => f.id === "default-credentials-http")!.evidence).toContain("admin/admin");
  });

  it("flags the anonymous broker and what an anonymous client may read", () => {
    expect(ids(at(result, anonymousMqtt.port))).toEqual(["mqtt-anonymous", "mqtt-anonymous-read-all", "mqtt-anonymous-read-sys", "mqtt-plaintext"]);
    const readAll = at(result, anonymousMqtt.port).find((f) => f.id === "mqtt-anonymous-read-all")!;
    expect(readAll.severity).toBe("critical");
    expect(readAll.evidence).toContain("plant/line1/temperature");
  });

  it("finds the default login of a broker that refuses anonymous clients", () => {
    expect(ids(at(result, passwordMqtt.port))).toEqual(["default-credentials-mqtt", "mqtt-plaintext"]);
    expect(at(result, passwordMqtt.port)[0]!.evidence + at(result, passwordMqtt.port)[1]!.evidence).toContain("admin/password");
  });

  it("flags CoAP answering without DTLS", () => {
    const [finding] = at(result, coap.port, "udp");
    expect(finding).toMatchObject({ id: "coap-no-dtls", transport: "udp" });
    expect(finding!.evidence).toContain("2.05");
    expect(finding!.evidence).toContain("/sensors/temp");
  });

  it("flags TLS 1.0 on the legacy server, but not its certificate", () => {
    const found = at(result, tls10.port);
    expect(found.find((f) => f.id === "tls-legacy-version")!.evidence).toContain("TLSv1 ");
    const tls = result.hosts[0]!.ports.find((p) => p.port === tls10.port)!.service!.tls!;
    expect(tls.versionsAccepted).toEqual(expect.arrayContaining(["TLSv1", "TLSv1.2"]));
    expect(found.filter((f) => f.id.startsWith("tls-cert") || f.id === "tls-hostname-mismatch")).toEqual([]);
  });

  it("flags the expired certificate", () => {
    const found = at(result, expired.port);
    expect(ids(found)).toEqual(["tls-cert-expired"]);
    expect(found[0]!.evidence).toContain("2021-01-01");
    expect(found[0]!.severity).toBe("high");
  });

  it("flags a self-signed RSA-1024 certificate for another name, and weak suites", () => {
    expect(ids(at(result, weakCert.port))).toEqual(["tls-cbc-suite", "tls-cert-self-signed", "tls-hostname-mismatch", "tls-no-forward-secrecy", "tls-non-ecdhe-suite", "tls-sha1-mac-suite", "tls-small-key", "tls-weak-cipher"]);
    const suites = result.hosts[0]!.ports.find((p) => p.port === weakCert.port)!.service!.tls!.cipherSuites;
    expect(suites.find((c) => c.name === "AES128-SHA")?.weaknesses).toEqual(["cbc", "sha1-mac", "non-ecdhe"]);
    expect(at(result, weakCert.port).find((f) => f.id === "tls-cbc-suite")!.evidence).toContain("AES128-SHA");
    expect(at(result, weakCert.port).find((f) => f.id === "tls-small-key")!.evidence).toContain("1024-bit RSA");
    expect(at(result, weakCert.port).find((f) => f.id === "tls-weak-cipher")!.evidence).toContain("anonymous");
  });

  it("maps every finding to OWASP IoT and ETSI EN 303 645 and gives a remediation", () => {
    for (const f of result.findings) {
      expect(f.owasp.length).toBeGreaterThan(0);
      expect(f.owasp.every((c) => /^I([1-9]|10)$/.test(c))).toBe(true);
      expect(f.etsi.every((p) => /^5\.\d+-\d+$/.test(p))).toBe(true);
      expect(f.remediation.length).toBeGreaterThan(10);
    }
  });

  it("writes SARIF 2.1.0 whose results point at their rules", () => {
    const sarif = JSON.parse(JSON.stringify(toSarif(result, "0.1.0"))) as {
      version: string;
      runs: Array<{ tool: { driver: { rules: Array<{ id: string }> } }; results: Array<{ ruleId: string; ruleIndex: number; level: string; locations: Array<{ physicalLocation: { artifactLocation: { uri: string } } }> }> }>;
    };
    expect(sarif.version).toBe("2.1.0");
    const run = sarif.runs[0]!;
    expect(run.tool.driver.rules.length).toBe(FINDING_RULES.size);
    expect(run.results.length).toBe(result.findings.length);
    for (const r of run.results) {
      expect(run.tool.driver.rules[r.ruleIndex]!.id).toBe(r.ruleId);
      expect(["error", "warning", "note"]).toContain(r.level);
      expect(r.locations[0]!.physicalLocation.artifactLocation.uri).toMatch(/^(tcp|udp):\/\/127\.0\.0\.1:\d+$/);
    }
  });

  it("skips credential attempts with credentials: false", async () => {
    const again = await runScan({ targets: ["127.0.0.1"], ports: `${telnet.port},${http.port}`, credentials: false, ...FAST });
    expect(again.findings.map((f) => f.id).filter((id) => id.startsWith("default-credentials"))).toEqual([]);
    expect(ids(again.findings)).toEqual(["http-basic-plaintext", "http-plaintext", "telnet-plaintext"]);
  });
});

describe.skipIf(!hasOpenssl)("clean mTLS service", () => {
  const dir = tempDir("moat-scan-mtls-");
  let server: Fixture;
  let pki: TestPki;

  beforeAll(async () => {
    pki = makeTestPki(dir.path);
    // Clean means Moat's own TLS policy: TLS 1.3, or TLS 1.2 with ECDHE and AEAD suites only.
    server = await startTlsFixture({ ...pki.good, ca: [pki.caPem], requestCert: true, rejectUnauthorized: true, ...TLS_SERVER_POLICY });
  });
  afterAll(async () => {
    await server?.close();
    dir.cleanup();
  });

  it("produces no high or critical finding and sees the client-certificate requirement", async () => {
    const result = await runScan({ targets: ["127.0.0.1"], ports: String(server.port), trustedCa: [pki.caPem], ...FAST });
    const severe = result.findings.filter((f) => f.severity === "high" || f.severity === "critical");
    expect(severe).toEqual([]);
    expect(result.findings).toEqual([]);
    const tls = result.hosts[0]!.ports[0]!.service!.tls!;
    expect(tls.clientCertificateRequired).toBe(true);
    expect(tls.versionsAccepted).toEqual(["TLSv1.2", "TLSv1.3"]);
    // Every suite was tried alone against the mTLS server: only the policy's, none with a weakness.
    expect(tls.cipherSuites.map((c) => c.name).sort()).toEqual(
      ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"].sort(),
    );
    expect(tls.cipherSuites.flatMap((c) => c.weaknesses)).toEqual([]);
    expect(tls.certificate?.subject).toContain("CN=localhost");
    expect(tls.hostnameMatches).toBe(true);
  });

  it("checks the certificate against the host name when the target is a name", async () => {
    const result = await runScan({ targets: ["localhost"], ports: String(server.port), trustedCa: [pki.caPem], detectServices: true, credentials: false, ...FAST });
    const port = result.hosts.find((h) => h.hostname === "localhost" && h.ports.length > 0)!.ports[0]!;
    expect(port.service!.tls).toMatchObject({ hostnameChecked: "localhost", hostnameMatches: true });
    expect(result.findings).toEqual([]);
  });

  it("reports only an untrusted-issuer finding when the private CA is not supplied", async () => {
    const result = await runScan({ targets: ["127.0.0.1"], ports: String(server.port), ...FAST });
    expect(ids(result.findings)).toEqual(["tls-cert-untrusted"]);
    expect(result.findings[0]!.severity).toBe("medium");
  });
});
