import { execFile, execFileSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createCaHierarchy,
  DeviceCertificateTemplate,
  generateCrl,
  issueOcspSigner,
  loadIssuer,
  OcspResponder,
  pkiUrls,
  toPem,
  verifyCsr,
  type CaMaterial,
  type Issuer,
  type OcspCertStatus,
} from "../../src/pki/index.js";
import { requireCommand } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";

const ok = requireCommand("openssl", "openssl");
const execFileAsync = promisify(execFile);
const openssl = (...args: string[]): string => execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

describe.skipIf(!ok)("device issuance, CRL and OCSP (pure PKI) checked by openssl", () => {
  const dir = tempDir("moat-pki-issue-");
  let root: CaMaterial;
  let issuing: CaMaterial;
  let issuer: Issuer;
  let template: DeviceCertificateTemplate;
  const file = (name: string): string => join(dir.path, name);

  beforeAll(async () => {
    ({ root, issuing } = await createCaHierarchy({ keyType: "ec-p256", trustDomain: "fleet.example" }));
    issuer = loadIssuer(issuing);
    template = new DeviceCertificateTemplate(issuer, "fleet.example", pkiUrls());
    writeFileSync(file("root.pem"), root.certificatePem);
    writeFileSync(file("issuing.pem"), issuing.certificatePem);
    writeFileSync(file("chain.pem"), issuing.certificatePem + root.certificatePem);
  });
  afterAll(() => dir.cleanup());

  const keyArgs: Record<string, string[]> = {
    p256: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    p384: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
    rsa2048: ["-newkey", "rsa:2048"],
    ed25519: ["-newkey", "ed25519"],
  };

  const issueFromOpenssl = (name: string, deviceId: string): { certPath: string; serialHex: string } => {
    openssl("req", "-new", "-nodes", ...keyArgs[name]!, "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`), "-subj", `/CN=${deviceId}`);
    const csr = verifyCsr(readFileSync(file(`${name}.csr`), "utf8"));
    const serial = Buffer.from("5a" + name.padEnd(15, "0").slice(0, 15).split("").map((c) => c.charCodeAt(0).toString(16).slice(-1)).join(""), "hex");
    const built = template.issue({ deviceId, spkiDer: csr.spkiDer, serial, days: 90 });
    writeFileSync(file(`${name}.pem`), toPem(built.der, "CERTIFICATE"));
    return { certPath: file(`${name}.pem`), serialHex: serial.toString("hex") };
  };

  for (const name of Object.keys(keyArgs)) {
    it(`${name}: openssl req CSR → device certificate accepted by openssl verify -purpose sslclient`, () => {
      const { certPath } = issueFromOpenssl(name, `dev-${name}`);
      expect(openssl("verify", "-CAfile", file("root.pem"), "-untrusted", file("issuing.pem"), "-purpose", "sslclient", certPath)).toContain(": OK");
      const text = openssl("x509", "-in", certPath, "-noout", "-text");
      expect(text).toContain(`Subject: O = fleet.example, CN = dev-${name}`);
      expect(text).toContain(`URI:urn:moat:fleet.example:device:dev-${name}`);
      expect(text).toMatch(/Key Usage: critical\s+Digital Signature\n/);
      expect(text).toMatch(/Extended Key Usage: \n\s+TLS Web Client Authentication/);
      expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
      expect(text).toContain("X509v3 Subject Key Identifier");
      expect(text).toContain("X509v3 Authority Key Identifier");
      expect(text).toContain("OCSP - URI:http://127.0.0.1:8080/ocsp");
      // The template path and the key from openssl agree.
      expect(openssl("x509", "-in", certPath, "-noout", "-pubkey")).toBe(openssl("pkey", "-in", file(`${name}.key`), "-pubout"));
    });
  }

  it("CRL: openssl crl verifies it and verify -crl_check reports the revoked certificate", () => {
    const good = issueFromOpenssl("p256", "dev-good");
    writeFileSync(file("good.pem"), readFileSync(good.certPath));
    const bad = issueFromOpenssl("p384", "dev-bad");
    const now = new Date();
    const crl = generateCrl({
      issuer,
      number: 7n,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + 86_400_000),
      entries: [
        { serialHex: bad.serialHex, revokedAt: now, reason: "keyCompromise" },
        { serialHex: "01020304", revokedAt: now, reason: "unspecified" },
      ],
    });
    writeFileSync(file("issuing.crl.pem"), toPem(crl, "X509 CRL"));
    const rootCrl = generateCrl({ issuer: loadIssuer(root), number: 1n, thisUpdate: now, nextUpdate: new Date(now.getTime() + 86_400_000), entries: [] });
    writeFileSync(file("root.crl.pem"), toPem(rootCrl, "X509 CRL"));
    const crlText = execFileSync("openssl", ["crl", "-in", file("issuing.crl.pem"), "-CAfile", file("chain.pem"), "-noout", "-text"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(crlText).toContain("X509v3 CRL Number: \n                7");
    expect(crlText).toContain(`Serial Number: ${bad.serialHex.toUpperCase()}`);
    expect(crlText).toContain("Key Compromise");
    // `openssl crl -CAfile` prints "verify OK" on stderr.
    const result = execFileSync("sh", ["-c", `openssl crl -in ${file("issuing.crl.pem")} -CAfile ${file("chain.pem")} -noout 2>&1`], { encoding: "utf8" });
    expect(result).toContain("verify OK");
    writeFileSync(file("crls.pem"), toPem(crl, "X509 CRL") + toPem(rootCrl, "X509 CRL"));
    const check = (cert: string): string =>
      execFileSync("sh", ["-c", `openssl verify -crl_check_all -CAfile ${file("root.pem")} -untrusted ${file("issuing.pem")} -CRLfile ${file("crls.pem")} ${cert} 2>&1; true`], { encoding: "utf8" });
    expect(check(file("good.pem"))).toContain(": OK");
    expect(check(bad.certPath)).toContain("certificate revoked");
  });

  describe("OCSP over HTTP with openssl ocsp", () => {
    let server: Server;
    let url = "";
    const statuses = new Map<string, OcspCertStatus>();
    let responder: OcspResponder;

    beforeAll(async () => {
      const lookup = async (_issuer: string, serials: readonly string[]) => new Map(serials.map((s) => [s, statuses.get(s) ?? { status: "unknown" as const }]));
      responder = new OcspResponder({ cas: [{ issuer }], lookup });
      server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          void responder.respond(Buffer.concat(chunks)).then((body) => {
            res.writeHead(200, { "content-type": "application/ocsp-response" });
            res.end(body);
          });
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ocsp`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    const ask = async (cert: string, extra: string[] = []): Promise<string> => {
      const { stdout, stderr } = await execFileAsync("openssl", ["ocsp", "-issuer", file("issuing.pem"), ...extra, "-cert", cert, "-url", url, "-CAfile", file("chain.pem"), "-resp_text"]);
      return stdout + stderr;
    };

    it("good, then revoked with reason, SHA-1 and SHA-256 CertIDs, nonce echoed", async () => {
      const leaf = issueFromOpenssl("p256", "dev-ocsp");
      statuses.set(leaf.serialHex, { status: "good" });
      const good = await ask(leaf.certPath);
      expect(good).toContain("Response verify OK");
      expect(good).toContain(`${leaf.certPath}: good`);
      expect(good).toContain("OCSP Nonce");
      statuses.set(leaf.serialHex, { status: "revoked", revokedAt: new Date(), reason: "keyCompromise" });
      const revoked = await ask(leaf.certPath, ["-sha256"]);
      expect(revoked).toContain("Response verify OK");
      expect(revoked).toContain(`${leaf.certPath}: revoked`);
      expect(revoked).toContain("Reason: keyCompromise");
      expect(revoked).toContain("Hash Algorithm: sha256");
      statuses.delete(leaf.serialHex);
      expect(await ask(leaf.certPath)).toContain(`${leaf.certPath}: unknown`);
    });

    it("a delegated signer (ocspSigning + nocheck) is accepted", async () => {
      const signer = await issueOcspSigner(issuer, "fleet.example");
      const delegated = new OcspResponder({ cas: [{ issuer, signer }], lookup: async (_i, serials) => new Map(serials.map((s) => [s, { status: "good" as const }])) });
      const previous = responder;
      responder = delegated;
      try {
        const leaf = issueFromOpenssl("p256", "dev-delegated");
        const out = await ask(leaf.certPath);
        expect(out).toContain("Response verify OK");
        expect(out).toContain("Moat OCSP Responder");
        expect(out).toContain(": good");
      } finally {
        responder = previous;
      }
    });

    it("garbage gets malformedRequest, not a crash", async () => {
      const response = await fetch(url, { method: "POST", body: Buffer.from("not an ocsp request"), headers: { "content-type": "application/ocsp-request" } });
      expect(Buffer.from(await response.arrayBuffer()).toString("hex")).toBe("30030a0101");
    });
  });
});
