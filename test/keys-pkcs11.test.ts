import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes, verify as nodeVerify } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  BasicConstraints,
  Certificate,
  CertificateList,
  Extension,
  Extensions,
  KeyUsage,
  KeyUsageFlags,
  Name,
  RelativeDistinguishedName,
  SubjectPublicKeyInfo,
  TBSCertList,
  TBSCertificate,
  Time,
  Validity,
  Version,
  id_ce_basicConstraints,
  id_ce_keyUsage,
} from "@peculiar/asn1-x509";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMoatError } from "../src/errors.js";
import { Envelope, Pkcs11KekProvider, Pkcs11Token, createTokenCaKey, loadTokenCaKey, type CaKeySigner } from "../src/keys/index.js";
import { requireCommand } from "./helpers/requirements.js";
import { tempDir } from "./helpers/temp.js";
import { SOFTHSM_MODULE, makeSoftHsm, softHsmAvailable } from "./keys-softhsm.js";

const ok = softHsmAvailable() && requireCommand("openssl", "openssl");
const PIN = "4711-test";

const ecdsaWithSha256 = new AlgorithmIdentifier({ algorithm: "1.2.840.10045.4.3.2" });
const nameOf = (commonName: string) =>
  new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: "2.5.4.3", value: new AttributeValue({ utf8String: commonName }) })])]);
const pemOf = (label: string, der: Buffer) => `-----BEGIN ${label}-----\n${der.toString("base64").replace(/(.{64})/g, "$1\n")}\n-----END ${label}-----\n`;

/** A self-signed CA certificate built with an independent ASN.1 library and signed by `signer`. */
async function selfSignedCa(signer: CaKeySigner, commonName: string): Promise<Buffer> {
  const name = nameOf(commonName);
  const extension = (id: string, value: unknown) => new Extension({ extnID: id, critical: true, extnValue: new OctetString(AsnConvert.serialize(value)) });
  const usage = new KeyUsage(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: new Uint8Array([0x01, ...randomBytes(15)]).buffer,
    signature: ecdsaWithSha256,
    issuer: name,
    subject: name,
    validity: new Validity({ notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000) }),
    subjectPublicKeyInfo: AsnConvert.parse(signer.publicKey.export({ format: "der", type: "spki" }), SubjectPublicKeyInfo),
    extensions: new Extensions([extension(id_ce_basicConstraints, new BasicConstraints({ cA: true })), extension(id_ce_keyUsage, usage)]),
  });
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = await signer.sign(tbsDer);
  const certificate = new Certificate({ tbsCertificate: tbs, signatureAlgorithm: ecdsaWithSha256, signatureValue: new Uint8Array(signature).buffer });
  return Buffer.from(AsnConvert.serialize(certificate));
}

/** An empty CRL (RFC 5280 §5) from the same CA, signed by `signer`. */
async function emptyCrl(signer: CaKeySigner, commonName: string): Promise<Buffer> {
  const tbs = new TBSCertList({
    version: Version.v2,
    signature: ecdsaWithSha256,
    issuer: nameOf(commonName),
    thisUpdate: new Time(new Date(Date.now() - 60_000)),
    nextUpdate: new Time(new Date(Date.now() + 3_600_000)),
  });
  const signature = await signer.sign(Buffer.from(AsnConvert.serialize(tbs)));
  return Buffer.from(AsnConvert.serialize(new CertificateList({ tbsCertList: tbs, signatureAlgorithm: ecdsaWithSha256, signature: new Uint8Array(signature).buffer })));
}

describe.skipIf(!ok)("PKCS#11 provider on a SoftHSM2 token made by this test", () => {
  const dir = tempDir("moat-p11-");
  let token: Pkcs11Token;

  beforeAll(() => {
    makeSoftHsm(dir.path, [
      { label: "moat-test", pin: PIN },
      { label: "other-token", pin: PIN },
    ]);
    token = Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: "moat-test", pin: () => PIN });
  });

  afterAll(() => {
    token?.close();
    dir.cleanup();
  });

  it("wraps and unwraps data keys inside the token with a non-extractable AES KEK", async () => {
    const provider = Pkcs11KekProvider.open(token, { create: true });
    const kek = await provider.current();
    expect(kek.version).toBe(1);
    const [object] = token.find("secret", "moat-kek-v1");
    expect(token.protection(object!.handle)).toEqual({ extractable: false, sensitive: true });
    expect(token.valueIsReadable(object!.handle)).toBe(false);

    const envelope = new Envelope(provider);
    const secret = randomBytes(48);
    const sealed = await envelope.seal(secret, "device-secret:dev-1");
    expect((await envelope.open(sealed, "device-secret:dev-1")).equals(secret)).toBe(true);
    expect(sealed.includes(secret)).toBe(false);
    await expect(envelope.open(sealed, "device-secret:dev-2")).rejects.toSatisfy((e) => isMoatError(e, "ENVELOPE_DECRYPT_FAILED"));
    const dek = randomBytes(32);
    const wrapped = await kek.wrap(dek, Buffer.from("aad"));
    wrapped[wrapped.length - 1]! ^= 1;
    await expect(kek.unwrap(wrapped, Buffer.from("aad"))).rejects.toSatisfy((e) => isMoatError(e, "ENVELOPE_DECRYPT_FAILED"));
  });

  it("creates new KEK versions in the token; old envelopes keep opening until the version is retired", async () => {
    const provider = Pkcs11KekProvider.open(token);
    const envelope = new Envelope(provider);
    const before = await envelope.seal(Buffer.from("old secret"), "row:1");
    const v2 = await provider.createVersion();
    expect(v2.version).toBe(2);
    expect((await provider.current()).version).toBe(2);
    const after = await envelope.seal(Buffer.from("new secret"), "row:2");
    expect((await envelope.open(before, "row:1")).toString()).toBe("old secret");
    expect((await envelope.open(after, "row:2")).toString()).toBe("new secret");
    // A second provider (another process, e.g. `moat serve`) sees the new version.
    const other = Pkcs11KekProvider.open(token);
    expect((await other.versions()).map((v) => [v.version, v.current])).toEqual([
      [1, false],
      [2, true],
    ]);
    await expect(provider.retire(v2.id, 2)).rejects.toSatisfy((e) => isMoatError(e, "KEK_VERSION_IN_USE"));
    const v1 = (await provider.versions())[0]!;
    await provider.retire(v1.id, v1.version);
    await expect(envelope.open(before, "row:1")).rejects.toSatisfy((e) => isMoatError(e, "KEK_MISMATCH"));
  });

  it("generates CA keys in the token whose signatures openssl verifies (self-signed CA and a CRL)", async () => {
    const signer = createTokenCaKey(token, "root");
    expect(signer.location).toBe("pkcs11:moat-test/moat-ca-root");
    const [privateObject] = token.find("private", "moat-ca-root");
    expect(token.protection(privateObject!.handle)).toEqual({ extractable: false, sensitive: true });
    expect(token.valueIsReadable(privateObject!.handle)).toBe(false);
    expect(() => createTokenCaKey(token, "root")).toThrow(/already holds/);

    const loaded = loadTokenCaKey(token, "root");
    const der = await selfSignedCa(loaded, "Moat HSM Test Root");
    const file = join(dir.path, "root.pem");
    writeFileSync(file, pemOf("CERTIFICATE", der));
    const out = execFileSync("openssl", ["verify", "-x509_strict", "-CAfile", file, file], { encoding: "utf8" });
    expect(out.trim()).toBe(`${file}: OK`);
    const crlFile = join(dir.path, "root.crl.pem");
    writeFileSync(crlFile, pemOf("X509 CRL", await emptyCrl(loaded, "Moat HSM Test Root")));
    const crlCheck = spawnSync("openssl", ["crl", "-in", crlFile, "-CAfile", file, "-noout"], { encoding: "utf8" });
    expect(crlCheck.status).toBe(0);
    expect(crlCheck.stderr).toContain("verify OK");
    // The signature is DER (X.509), and node verifies it against the token's public key too.
    const data = Buffer.from("crl tbs bytes");
    expect(nodeVerify("sha256", data, loaded.publicKey, await loaded.sign(data))).toBe(true);
    expect(nodeVerify("sha256", data, loaded.publicKey, loaded.signSync(data))).toBe(true);
  });

  it("reports a wrong PIN, an unknown token and a missing key with their own codes", () => {
    const attempt = (fn: () => unknown) => {
      try {
        fn();
        return "no error";
      } catch (error) {
        return isMoatError(error) ? error.code : String(error);
      }
    };
    expect(attempt(() => Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: "other-token", pin: () => "wrong" }))).toBe("PKCS11_LOGIN_FAILED");
    expect(attempt(() => Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: "nope", pin: () => PIN }))).toBe("PKCS11_TOKEN_NOT_FOUND");
    expect(attempt(() => Pkcs11Token.open({ modulePath: join(dir.path, "missing.so"), tokenLabel: "moat-test", pin: () => PIN }))).toBe("PKCS11_MODULE_FAILED");
    const other = Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: "other-token", pin: () => PIN });
    try {
      expect(attempt(() => Pkcs11KekProvider.open(other))).toBe("PKCS11_KEY_NOT_FOUND");
      expect(attempt(() => loadTokenCaKey(other, "root"))).toBe("PKCS11_KEY_NOT_FOUND");
    } finally {
      other.close();
    }
  });
});
