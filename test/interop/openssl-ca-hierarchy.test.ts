import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createCaHierarchy, issueServerCertificate, KEY_TYPES } from "../../src/pki/index.js";
import { requireCommand } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";

const ok = requireCommand("openssl", "openssl");
const dir = tempDir("moat-pki-ca-");
afterAll(() => dir.cleanup());

const openssl = (...args: string[]): string => execFileSync("openssl", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

describe.skipIf(!ok)("CA hierarchy and server certificates checked by openssl", () => {
  for (const keyType of KEY_TYPES) {
    it(`${keyType}: root → issuing → server verifies, with the profile's extensions`, async () => {
      const { root, issuing } = await createCaHierarchy({ keyType, trustDomain: "fleet.example" });
      const server = await issueServerCertificate({ issuing, hostnames: ["moat.local", "127.0.0.1", "::1"], trustDomain: "fleet.example" });
      const base = join(dir.path, keyType);
      writeFileSync(`${base}-root.pem`, root.certificatePem);
      writeFileSync(`${base}-issuing.pem`, issuing.certificatePem);
      writeFileSync(`${base}-server.pem`, server.certificatePem);
      expect(openssl("verify", "-CAfile", `${base}-root.pem`, "-untrusted", `${base}-issuing.pem`, "-purpose", "sslserver", `${base}-server.pem`)).toContain(": OK");
      expect(openssl("verify", "-CAfile", `${base}-root.pem`, `${base}-issuing.pem`)).toContain(": OK");

      const rootText = openssl("x509", "-in", `${base}-root.pem`, "-noout", "-text");
      expect(rootText).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:1/);
      expect(rootText).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
      expect(rootText).toContain("Subject: O = fleet.example, CN = Moat Root CA");
      expect(root.subject).toBe("CN=Moat Root CA, O=fleet.example");

      const issuingText = openssl("x509", "-in", `${base}-issuing.pem`, "-noout", "-text");
      expect(issuingText).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
      expect(issuingText).toContain("URI:http://127.0.0.1:8080/crl/root");
      expect(issuingText).toContain("CA Issuers - URI:http://127.0.0.1:8080/ca/root.cer");

      const serverText = openssl("x509", "-in", `${base}-server.pem`, "-noout", "-text");
      expect(serverText).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
      expect(serverText).toContain("TLS Web Server Authentication");
      expect(serverText).toContain("DNS:moat.local, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
      expect(serverText).toContain(`OCSP - URI:http://127.0.0.1:8080/ocsp`);
      expect(serverText).toContain(`URI:http://127.0.0.1:8080/crl/${issuing.serialHex}`);
      expect(openssl("x509", "-in", `${base}-server.pem`, "-noout", "-serial").trim().toLowerCase()).toBe(`serial=${server.serialHex}`);

      // The PKCS#8 keys are real and match their certificates.
      writeFileSync(`${base}-server.key`, server.privateKeyPkcs8Der);
      const keyPub = openssl("pkey", "-in", `${base}-server.key`, "-inform", "DER", "-pubout");
      const certPub = openssl("x509", "-in", `${base}-server.pem`, "-noout", "-pubkey");
      expect(keyPub).toBe(certPub);
      expect(root.notAfter.getTime() - Date.now()).toBeGreaterThan(19 * 365 * 86_400_000);
      expect(issuing.notAfter.getTime()).toBeLessThanOrEqual(root.notAfter.getTime());
    });
  }

  it("refuses a bad trust domain and a bad host name with PKI codes", async () => {
    await expect(createCaHierarchy({ keyType: "ec-p256", trustDomain: "Not A Domain" })).rejects.toMatchObject({ code: "PKI_TRUST_DOMAIN_INVALID" });
    const { issuing } = await createCaHierarchy({ keyType: "ec-p256", trustDomain: "td.example" });
    await expect(issueServerCertificate({ issuing, hostnames: ["bad host"], trustDomain: "td.example" })).rejects.toMatchObject({ code: "PKI_HOSTNAME_INVALID" });
    await expect(issueServerCertificate({ issuing, hostnames: ["ok.example"], trustDomain: "td.example", days: 5000 })).rejects.toMatchObject({ code: "PKI_VALIDITY_INVALID" });
  });
});
