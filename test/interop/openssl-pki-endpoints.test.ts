import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PkiHttpServer, sendProblem, problemOf } from "../../src/api/index.js";
import { estRoutes } from "../../src/api/routes/est.js";
import type { SecurityEventInput } from "../../src/audit/index.js";
import { MoatError } from "../../src/errors.js";
import { toPem } from "../../src/pki/index.js";
import { requireCommand } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";
import { createPkiFixture, type PkiFixture } from "../pki-fixture.js";

const ok = requireCommand("openssl", "openssl") && requireCommand("curl", "curl");
const run = promisify(execFile);

/** Runs a command; returns stdout+stderr and the exit code (never throws). */
async function sh(command: string, args: string[]): Promise<{ out: string; code: number }> {
  try {
    const { stdout, stderr } = await run(command, args, { encoding: "utf8" });
    return { out: stdout + stderr, code: 0 };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; code?: number };
    return { out: (e.stdout ?? "") + (e.stderr ?? ""), code: typeof e.code === "number" ? e.code : 1 };
  }
}

describe.skipIf(!ok)("PKI endpoints (CRL, OCSP, EST) with openssl and curl", () => {
  const dir = tempDir("moat-pki-endpoints-");
  const file = (name: string) => join(dir.path, name);
  let f: PkiFixture;
  let pkiServer: PkiHttpServer;
  let pkiBase = "";
  let est: FastifyInstance;
  let estBase = "";
  const estEvents: SecurityEventInput[] = [];

  beforeAll(async () => {
    f = await createPkiFixture("sqlite", { rotationGraceMs: 3_600_000 });
    pkiServer = new PkiHttpServer({ pki: f.pki, ca: f.registry }, { host: "127.0.0.1", port: 0 });
    pkiBase = `http://127.0.0.1:${(await pkiServer.listen()).port}`;
    const tls = await f.registry.serverTls();
    est = Fastify({ https: { key: tls.key, cert: tls.cert, requestCert: true, rejectUnauthorized: false } }) as unknown as FastifyInstance;
    est.setErrorHandler((error, _request, reply) =>
      sendProblem(
        reply,
        error instanceof MoatError
          ? problemOf(error.code, error.message, error.status)
          : (error as { statusCode?: number }).statusCode === 413
            ? problemOf("BODY_TOO_LARGE", "too large")
            : problemOf("INTERNAL", "internal error"),
      ),
    );
    const securityEvents = { emit: async (event: SecurityEventInput) => void estEvents.push(event) };
    await est.register(estRoutes, { services: { pki: f.pki, ca: f.registry, securityEvents }, settings: { authFailureLimit: 1000, authFailureWindowSeconds: 60 } });
    await est.listen({ host: "127.0.0.1", port: 0 });
    estBase = `https://127.0.0.1:${(est.server.address() as AddressInfo).port}`;
    writeFileSync(file("chain.pem"), await f.registry.chainPem());
    writeFileSync(file("root.pem"), await f.registry.rootPem());
    writeFileSync(file("issuing.pem"), (await f.registry.active("issuing")).certificatePem);
  });
  afterAll(async () => {
    await est?.close();
    await pkiServer?.close();
    await f?.close();
    dir.cleanup();
  });

  const newCsr = async (name: string, cn: string) => {
    await sh("openssl", ["req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`), "-subj", `/CN=${cn}`]);
    await sh("openssl", ["req", "-in", file(`${name}.csr`), "-outform", "DER", "-out", file(`${name}.csr.der`)]);
    writeFileSync(file(`${name}.b64`), readFileSync(file(`${name}.csr.der`)).toString("base64"));
  };

  /** EST enroll with curl; the response body is base64 certs-only PKCS#7, decoded to PEM by openssl. */
  const enroll = async (name: string, path: string, auth: string[]) => {
    const res = await sh("curl", ["-sS", "--cacert", file("chain.pem"), ...auth, "-H", "Content-Type: application/pkcs10", "--data-binary", `@${file(`${name}.b64`)}`, "-o", file(`${name}.p7.b64`), "-w", "%{http_code}", `${estBase}${path}`]);
    return res.out.trim();
  };
  const p7ToPem = async (name: string) => {
    writeFileSync(file(`${name}.p7`), Buffer.from(readFileSync(file(`${name}.p7.b64`), "utf8"), "base64"));
    const printed = await sh("openssl", ["pkcs7", "-inform", "DER", "-in", file(`${name}.p7`), "-print_certs"]);
    writeFileSync(file(`${name}.pem`), printed.out);
    return printed;
  };

  it("EST cacerts: openssl pkcs7 -print_certs reads the root and issuing CA", async () => {
    const res = await sh("curl", ["-sS", "--cacert", file("chain.pem"), "-D", file("cacerts.headers"), "-o", file("cacerts.p7.b64"), `${estBase}/.well-known/est/cacerts`]);
    expect(res.code).toBe(0);
    expect(readFileSync(file("cacerts.headers"), "utf8").toLowerCase()).toContain("content-type: application/pkcs7-mime; smime-type=certs-only");
    const printed = await p7ToPem("cacerts");
    expect(printed.out).toContain("subject=O = fleet.example, CN = Moat Root CA");
    expect(printed.out).toContain("subject=O = fleet.example, CN = Moat Issuing CA");
  });

  it("EST simpleenroll with a one-time token, then simplereenroll over mTLS; OCSP and CRL follow", async () => {
    await f.addDevice("est-1", "pending");
    const { token } = await f.enrollmentTokens.create("est-1", 3_600_000, "test");
    await newCsr("est1", "est-1");
    expect(await enroll("est1", "/.well-known/est/simpleenroll", ["-H", `Authorization: Bearer ${token}`])).toBe("200");
    expect((await p7ToPem("est1")).out).toContain("subject=O = fleet.example, CN = est-1");
    expect((await sh("openssl", ["verify", "-CAfile", file("chain.pem"), "-purpose", "sslclient", file("est1.pem")])).out).toContain(": OK");
    // The token is single use.
    expect(await enroll("est1", "/.well-known/est/simpleenroll", ["-H", `Authorization: Bearer ${token}`])).toBe("401");
    expect(readFileSync(file("est1.p7.b64"), "utf8")).toContain("PKI_ENROLL_TOKEN_USED");
    // Without any credential.
    expect(await enroll("est1", "/.well-known/est/simpleenroll", [])).toBe("401");

    // OCSP good for the enrolled certificate.
    const ocsp = (cert: string, extra: string[] = []) =>
      sh("openssl", ["ocsp", "-issuer", file("issuing.pem"), ...extra, "-cert", cert, "-url", `${pkiBase}/ocsp`, "-CAfile", file("chain.pem"), "-resp_text"]);
    const good = await ocsp(file("est1.pem"));
    expect(good.out).toContain("Response verify OK");
    expect(good.out).toContain(`${file("est1.pem")}: good`);

    // Re-enroll with the current certificate as the TLS client certificate.
    await newCsr("est1b", "est-1");
    expect(await enroll("est1b", "/.well-known/est/simplereenroll", ["--cert", file("est1.pem"), "--key", file("est1.key")])).toBe("200");
    await p7ToPem("est1b");
    const oldSerial = (await sh("openssl", ["x509", "-in", file("est1.pem"), "-noout", "-serial"])).out.trim().split("=")[1]!.toLowerCase();
    expect((await f.pki.certificates.get(oldSerial)).supersededBy).not.toBeNull();
    // The replaced certificate (inside its grace period) mints nothing more with a new key ...
    await newCsr("stale", "est-1");
    expect(await enroll("stale", "/.well-known/est/simplereenroll", ["--cert", file("est1.pem"), "--key", file("est1.key")])).toBe("403");
    expect(readFileSync(file("stale.p7.b64"), "utf8")).toContain("PKI_REENROLL_CERT_SUPERSEDED");
    // ... but a retry whose answer was lost (same key as the issued request) receives the same certificate.
    await sh("openssl", ["req", "-new", "-key", file("est1b.key"), "-subj", "/CN=est-1", "-outform", "DER", "-out", file("retry.csr.der")]);
    writeFileSync(file("retry.b64"), readFileSync(file("retry.csr.der")).toString("base64"));
    expect(await enroll("retry", "/.well-known/est/simplereenroll", ["--cert", file("est1.pem"), "--key", file("est1.key")])).toBe("200");
    await p7ToPem("retry");
    expect(readFileSync(file("retry.pem"), "utf8")).toBe(readFileSync(file("est1b.pem"), "utf8"));
    expect(await f.pki.certificates.list({ deviceId: "est-1", status: "active" })).toHaveLength(1);
    // During its grace period the replaced certificate is good everywhere: OCSP answers good (the CRL check follows below).
    expect((await ocsp(file("est1.pem"))).out).toContain(`${file("est1.pem")}: good`);
    // Re-enrolling as another device is refused.
    await newCsr("other", "someone-else");
    expect(await enroll("other", "/.well-known/est/simplereenroll", ["--cert", file("est1b.pem"), "--key", file("est1b.key")])).toBe("403");
    expect(readFileSync(file("other.p7.b64"), "utf8")).toContain("PKI_REENROLL_DEVICE_MISMATCH");

    // Revoke the new certificate: OCSP says revoked (SHA-256 CertID), the CRL from GET /crl lists it.
    const newSerial = (await sh("openssl", ["x509", "-in", file("est1b.pem"), "-noout", "-serial"])).out.trim().split("=")[1]!.toLowerCase();
    await f.pki.certificates.revoke(newSerial, "keyCompromise", "test");
    const revoked = await ocsp(file("est1b.pem"), ["-sha256"]);
    expect(revoked.out).toContain("Response verify OK");
    expect(revoked.out).toContain(`${file("est1b.pem")}: revoked`);
    expect(revoked.out).toContain("Reason: keyCompromise");
    // A revoked certificate cannot re-enroll.
    expect(await enroll("est1", "/.well-known/est/simplereenroll", ["--cert", file("est1b.pem"), "--key", file("est1b.key")])).toBe("403");
    expect(readFileSync(file("est1.p7.b64"), "utf8")).toContain("PKI_REENROLL_CERT_REVOKED");

    const crlFetch = await sh("curl", ["-sS", "-D", file("crl.headers"), "-o", file("issuing.crl"), `${pkiBase}/crl`]);
    expect(crlFetch.code).toBe(0);
    expect(readFileSync(file("crl.headers"), "utf8").toLowerCase()).toContain("content-type: application/pkix-crl");
    await sh("curl", ["-sS", "-o", file("root.crl"), `${pkiBase}/crl/root`]);
    const crlCheck = await sh("openssl", ["crl", "-inform", "DER", "-in", file("issuing.crl"), "-CAfile", file("chain.pem"), "-noout"]);
    expect(crlCheck.out).toContain("verify OK");
    writeFileSync(
      file("crls.pem"),
      toPem(readFileSync(file("issuing.crl")), "X509 CRL") + toPem(readFileSync(file("root.crl")), "X509 CRL"),
    );
    const verifyRevoked = await sh("openssl", ["verify", "-crl_check_all", "-CAfile", file("root.pem"), "-untrusted", file("issuing.pem"), "-CRLfile", file("crls.pem"), file("est1b.pem")]);
    expect(verifyRevoked.out).toContain("certificate revoked");
    // The superseded (not yet revoked) one still verifies during its grace period.
    const verifyOld = await sh("openssl", ["verify", "-crl_check_all", "-CAfile", file("root.pem"), "-untrusted", file("issuing.pem"), "-CRLfile", file("crls.pem"), file("est1.pem")]);
    expect(verifyOld.out).toContain(": OK");
  });

  it("zero-touch EST enrollment with a factory certificate from a trusted manufacturer CA", async () => {
    const conf = file("mfr.cnf");
    writeFileSync(conf, "[ca_ext]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n[leaf_ext]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n");
    await sh("openssl", ["req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", file("mfr.key"), "-out", file("mfr.pem"), "-subj", "/O=Acme Devices/CN=Acme IDevID CA", "-days", "30", "-config", conf, "-extensions", "ca_ext"]);
    const makeIdevid = async (name: string, serial: string, caKey: string, caCert: string) => {
      await sh("openssl", ["req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", file(`${name}.key`), "-out", file(`${name}.req`), "-subj", `/O=Acme Devices/serialNumber=${serial}/CN=${serial}`]);
      await sh("openssl", ["x509", "-req", "-in", file(`${name}.req`), "-CA", caCert, "-CAkey", caKey, "-CAcreateserial", "-days", "10", "-out", file(`${name}.pem`), "-extfile", conf, "-extensions", "leaf_ext"]);
    };
    await makeIdevid("idevid", "zt-1", file("mfr.key"), file("mfr.pem"));
    await f.addDevice("zt-1", "pending");
    await newCsr("zt1", "zt-1");
    // Not trusted yet.
    expect(await enroll("zt1", "/.well-known/est/simpleenroll", ["--cert", file("idevid.pem"), "--key", file("idevid.key")])).toBe("401");
    expect(readFileSync(file("zt1.p7.b64"), "utf8")).toContain("PKI_MANUFACTURER_CERT_UNTRUSTED");
    await f.pki.enrollment.trustManufacturer(readFileSync(file("mfr.pem"), "utf8"), "test");
    expect(await enroll("zt1", "/.well-known/est/simpleenroll", ["--cert", file("idevid.pem"), "--key", file("idevid.key")])).toBe("200");
    expect((await p7ToPem("zt1")).out).toContain("CN = zt-1");
    expect((await f.devices.get("zt-1")).status).toBe("active");
    // A self-made "manufacturer" is not trusted.
    await sh("openssl", ["req", "-x509", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", file("evil.key"), "-out", file("evil.pem"), "-subj", "/CN=Evil CA", "-days", "30", "-config", conf, "-extensions", "ca_ext"]);
    await makeIdevid("evil-idevid", "zt-1", file("evil.key"), file("evil.pem"));
    expect(await enroll("zt1", "/.well-known/est/simpleenroll", ["--cert", file("evil-idevid.pem"), "--key", file("evil-idevid.key")])).toBe("401");
    await expect(f.pki.enrollment.trustManufacturer(readFileSync(file("idevid.pem"), "utf8"), "test")).rejects.toMatchObject({ code: "PKI_MANUFACTURER_CA_INVALID" });
  });

  it("hostile input over HTTP: garbage OCSP gets malformedRequest, bad CSR bodies get PKI codes, nothing crashes", async () => {
    for (const body of [Buffer.from("garbage"), Buffer.alloc(0), Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), Buffer.from("3003020101", "hex")]) {
      const res = await fetch(`${pkiBase}/ocsp`, { method: "POST", body, headers: { "content-type": "application/ocsp-request" } });
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).toString("hex")).toBe("30030a0101");
    }
    const viaGet = await fetch(`${pkiBase}/ocsp/${encodeURIComponent("!!notbase64")}`);
    expect(Buffer.from(await viaGet.arrayBuffer()).toString("hex")).toBe("30030a0101");
    const big = await fetch(`${pkiBase}/ocsp`, { method: "POST", body: Buffer.alloc(70_000), headers: { "content-type": "application/ocsp-request" } });
    expect(big.status).toBe(413);
    expect((await fetch(`${pkiBase}/crl/ffff`)).status).toBe(404);
    expect((await fetch(`${pkiBase}/nothing`)).status).toBe(404);
    expect((await fetch(`${pkiBase}/crl`, { method: "DELETE" })).status).toBe(405);
    const rootCer = await fetch(`${pkiBase}/ca/root.cer`);
    expect(rootCer.headers.get("content-type")).toBe("application/pkix-cert");

    await f.addDevice("hostile-1");
    const { token } = await f.enrollmentTokens.create("hostile-1", 3_600_000, "test");
    writeFileSync(file("garbage.b64"), "this is not base64!!");
    expect(await enroll("garbage", "/.well-known/est/simpleenroll", ["-H", `Authorization: Bearer ${token}`])).toBe("400");
    expect(readFileSync(file("garbage.p7.b64"), "utf8")).toContain("PKI_CSR_MALFORMED");
    writeFileSync(file("trunc.b64"), readFileSync(file("est1.csr.der")).subarray(0, 50).toString("base64"));
    expect(await enroll("trunc", "/.well-known/est/simpleenroll", ["-H", `Authorization: Bearer ${token}`])).toBe("400");
    expect(readFileSync(file("trunc.p7.b64"), "utf8")).toContain("PKI_CSR_MALFORMED");
    // Over the body limit (Fastify refuses it), and under the body limit but over 64 KiB of CSR.
    writeFileSync(file("huge.b64"), Buffer.alloc(100_000, 1).toString("base64"));
    expect(await enroll("huge", "/.well-known/est/simpleenroll", ["-H", `Authorization: Bearer ${token}`])).toBe("413");
    writeFileSync(file("big.b64"), Buffer.alloc(66_000, 1).toString("base64"));
    expect(await enroll("big", "/.well-known/est/simpleenroll", ["-H", `Authorization: Bearer ${token}`])).toBe("413");
    expect(readFileSync(file("big.p7.b64"), "utf8")).toContain("PKI_CSR_TOO_LARGE");
    // The refused requests did not consume the token.
    await newCsr("hostile", "hostile-1");
    expect(await enroll("hostile", "/.well-known/est/simpleenroll", ["-H", `Authorization: Bearer ${token}`])).toBe("200");
  });
});
