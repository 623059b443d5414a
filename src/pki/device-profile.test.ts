import { generateKeyPairSync, randomBytes, X509Certificate } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createCaHierarchy } from "./ca-hierarchy.js";
import { encodeTbsCertificate, parseCertificate } from "./certificate.js";
import { verifyCsr } from "./csr.js";
import { readTlv, children } from "../crypto/index.js";
import { DeviceCertificateTemplate, deviceUrn } from "./device-profile.js";
import { authorityInfoAccess, authorityKeyIdentifier, basicConstraints, crlDistributionPoints, extendedKeyUsage, keyIdentifier, keyUsage, subjectAltName, subjectKeyIdentifier } from "./extensions.js";
import { loadIssuer } from "./issuer.js";
import { moatName } from "./name.js";
import { pkiUrls } from "./naming.js";
import { OID } from "./oids.js";
import { publicKeyBitsOf } from "./ca-hierarchy.js";
import { MoatError } from "../errors.js";

describe("device certificate template", () => {
  it("encodes exactly the TBSCertificate the generic encoder builds from the same fields", async () => {
    const { issuing } = await createCaHierarchy({ keyType: "ec-p256", trustDomain: "td.example" });
    const issuer = loadIssuer(issuing);
    const urls = pkiUrls("http://pki.td.example:8080");
    const template = new DeviceCertificateTemplate(issuer, "td.example", urls);
    const spkiDer = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "der", type: "spki" });
    const serial = Buffer.from("51" + randomBytes(15).toString("hex"), "hex");
    const built = template.issue({ deviceId: "dev-7", spkiDer, serial, days: 90 });
    const expected = encodeTbsCertificate(
      {
        serial,
        issuerDer: issuer.certificate.subjectDer,
        subjectDer: moatName("dev-7", "td.example"),
        notBefore: built.notBefore,
        notAfter: built.notAfter,
        spkiDer,
        extensions: [
          basicConstraints(false),
          keyUsage(["digitalSignature"]),
          extendedKeyUsage([OID.clientAuth]),
          subjectAltName([{ type: "uri", value: deviceUrn("td.example", "dev-7") }]),
          subjectKeyIdentifier(keyIdentifier(publicKeyBitsOf(spkiDer))),
          authorityKeyIdentifier(issuer.keyId),
          crlDistributionPoints(urls.crl(issuer.serialHex)),
          authorityInfoAccess({ ocsp: urls.ocsp, caIssuers: urls.caCert(issuer.serialHex) }),
        ],
      },
      issuer.keyType,
    );
    expect(parseCertificate(built.der).tbsDer.equals(expected)).toBe(true);
    expect(new X509Certificate(built.der).verify(new X509Certificate(issuing.certificatePem).publicKey)).toBe(true);
  });
});

describe("hostile DER never escapes as anything but a coded error", () => {
  it("random bytes and mutated CSRs fail with PKI_CSR_* codes, never a crash", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    void privateKey;
    const seed = Buffer.from(
      "3081b93061020100300f310d300b06035504030c0464657631305930130607" + publicKey.export({ format: "der", type: "spki" }).toString("hex").slice(30) + "a000",
      "hex",
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.nat(), (bytes, position) => {
        const inputs = [Buffer.from(bytes), Buffer.from([0x30, ...bytes])];
        const mutated = Buffer.from(seed);
        if (mutated.length > 0) mutated[position % mutated.length] = bytes[0] ?? 0xff;
        inputs.push(mutated);
        for (const input of inputs) {
          try {
            verifyCsr(input);
          } catch (error) {
            expect(error).toBeInstanceOf(MoatError);
            expect((error as MoatError).code).toMatch(/^PKI_CSR_/);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it("the reader refuses lengths that run past the end and non-minimal encodings", () => {
    expect(() => readTlv(Buffer.from([0x30, 0x05, 0x01]))).toThrow(/truncated/);
    expect(() => readTlv(Buffer.from([0x30, 0x81, 0x05, 0, 0, 0, 0, 0]))).toThrow(/non-minimal/);
    expect(() => readTlv(Buffer.from([0x30, 0x80, 0, 0]))).toThrow(/indefinite/);
    expect(() => children(Buffer.from([0x02, 0x01]))).toThrow();
  });
});
