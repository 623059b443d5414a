import { X509Certificate } from "node:crypto";
import { afterEach, beforeEach, expect, it } from "vitest";
import { OID } from "../src/pki/oids.js";
import { parseEnrollmentToken } from "../src/identity/index.js";
import { parseCertificate } from "../src/pki/index.js";
import { forEachDialect } from "./helpers/dialects.js";
import { buildCsr, createPkiFixture, TRUST_DOMAIN, type PkiFixture } from "./pki-fixture.js";

const cn = (id: string): [string, string][] => [[OID.commonName, id]];

forEachDialect("PKI services over the store", (dialect) => {
  let f: PkiFixture;
  beforeEach(async () => {
    f = await createPkiFixture(dialect, { groupDays: { sensors: 30 } });
  });
  afterEach(async () => {
    await f.close();
  });

  const countCerts = async () => Number((await f.store.db.selectFrom("certificates").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n);
  const events = async (type: string) => f.store.db.selectFrom("audit_events").selectAll().where("type", "=", type).execute();
  const changes = async (kind: string) => f.store.db.selectFrom("change_feed").selectAll().where("kind", "=", kind).execute();

  it("issues from a CSR, records it, activates a pending device and emits cert.issued", async () => {
    await f.addDevice("dev-1", "pending");
    const issued = await f.pki.certificates.issueFromCsr({ deviceId: "dev-1", csr: buildCsr({ subject: cn("dev-1") }).der, actor: "cli" });
    const cert = new X509Certificate(issued.certificateDer);
    expect(cert.subject).toContain("CN=dev-1");
    expect(cert.subjectAltName).toBe(`URI:urn:moat:${TRUST_DOMAIN}:device:dev-1`);
    expect(cert.verify(new X509Certificate(issued.issuingCaPem).publicKey)).toBe(true);
    const days = (issued.notAfter.getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(89.9);
    expect(days).toBeLessThanOrEqual(90);
    expect((await f.devices.get("dev-1")).status).toBe("active");
    const record = await f.pki.certificates.get(issued.serialHex);
    expect(record).toMatchObject({ deviceId: "dev-1", status: "active", keyKind: "ec-p256", fingerprint: issued.fingerprint });
    expect((await events("cert.issued")).map((e) => e.subject)).toEqual(["dev-1"]);
    expect((await events("device.status_changed")).length).toBe(1);
    // An empty subject is fine too; the CA still names the device.
    const second = await f.pki.certificates.issueFromCsr({ deviceId: "dev-1", csr: buildCsr().der, actor: "cli" });
    expect(new X509Certificate(second.certificateDer).subject).toContain("CN=dev-1");
    expect(await f.pki.certificates.list({ deviceId: "dev-1" })).toHaveLength(2);
  });

  it("refuses with specific codes and stores nothing", async () => {
    await f.addDevice("dev-1");
    await f.addDevice("dev-2");
    await f.addDevice("dev-s", "suspended");
    const refuse = (csr: Buffer | string, deviceId = "dev-1", days?: number) => f.pki.certificates.issueFromCsr({ deviceId, csr, actor: "cli", ...(days ? { days } : {}) });
    await expect(refuse(buildCsr({ subject: cn("dev-2") }).der)).rejects.toMatchObject({ code: "PKI_CSR_SUBJECT_MISMATCH" });
    await expect(refuse(buildCsr({ subject: [[OID.commonName, "dev-1"], [OID.organizationName, "evil"]] }).der)).rejects.toMatchObject({ code: "PKI_CSR_SUBJECT_MISMATCH" });
    await expect(refuse(buildCsr({ tamper: true }).der)).rejects.toMatchObject({ code: "PKI_CSR_SIGNATURE_INVALID" });
    await expect(refuse(buildCsr({ requestCa: true }).der)).rejects.toMatchObject({ code: "PKI_CSR_CA_REQUESTED" });
    await expect(refuse(buildCsr({ requestKeyCertSign: true }).der)).rejects.toMatchObject({ code: "PKI_CSR_CA_REQUESTED" });
    await expect(refuse(buildCsr({ keyType: "rsa1024" }).der)).rejects.toMatchObject({ code: "PKI_CSR_WEAK_KEY" });
    await expect(refuse(buildCsr({ keyType: "secp256k1" }).der)).rejects.toMatchObject({ code: "PKI_CSR_KEY_UNSUPPORTED" });
    await expect(refuse(buildCsr({ signatureAlgorithm: "sha1" }).der)).rejects.toMatchObject({ code: "PKI_CSR_SIGNATURE_ALGORITHM" });
    await expect(refuse("garbage")).rejects.toMatchObject({ code: "PKI_CSR_MALFORMED" });
    await expect(refuse(buildCsr().der.subarray(0, 40))).rejects.toMatchObject({ code: "PKI_CSR_MALFORMED" });
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${buildCsr().der.toString("base64").slice(0, 120)}\n-----END CERTIFICATE REQUEST-----\n`;
    await expect(refuse(pem)).rejects.toMatchObject({ code: "PKI_CSR_MALFORMED" });
    await expect(refuse("-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n")).rejects.toMatchObject({ code: "PKI_CSR_MALFORMED" });
    await expect(refuse(Buffer.alloc(64 * 1024 + 1, 0x41))).rejects.toMatchObject({ code: "PKI_CSR_TOO_LARGE" });
    await expect(refuse(buildCsr().der, "dev-s")).rejects.toMatchObject({ code: "PKI_DEVICE_NOT_ELIGIBLE" });
    await expect(refuse(buildCsr().der, "nobody")).rejects.toMatchObject({ code: "DEVICE_NOT_FOUND" });
    await expect(refuse(buildCsr().der, "dev-1", 398)).rejects.toMatchObject({ code: "PKI_VALIDITY_INVALID" });
    expect(await countCerts()).toBe(0);
    expect(await events("cert.issued")).toHaveLength(0);
  });

  it("applies per-group validity and the requested validity below the maximum", async () => {
    await f.addDevice("sensor-1", "active", "sensors");
    const grouped = await f.pki.certificates.issueFromCsr({ deviceId: "sensor-1", csr: buildCsr().der, actor: "cli" });
    expect(Math.round((grouped.notAfter.getTime() - Date.now()) / 86_400_000)).toBe(30);
    const asked = await f.pki.certificates.issueFromCsr({ deviceId: "sensor-1", csr: buildCsr().der, actor: "cli", days: 7 });
    expect(Math.round((asked.notAfter.getTime() - Date.now()) / 86_400_000)).toBe(7);
    expect(Date.now() - parseCertificate(asked.certificateDer).notBefore.getTime()).toBeGreaterThanOrEqual(5 * 60_000 - 1000);
  });

  it("revokes with feed row + event in one transaction and a fresh CRL with a higher number", async () => {
    await f.addDevice("dev-1");
    const a = await f.pki.certificates.issueFromCsr({ deviceId: "dev-1", csr: buildCsr().der, actor: "cli" });
    const b = await f.pki.certificates.issueFromCsr({ deviceId: "dev-1", csr: buildCsr().der, actor: "cli" });
    const before = await f.pki.crls.current();
    await f.pki.certificates.revoke(a.serialHex, "keyCompromise", "cli");
    const after = await f.pki.crls.current();
    expect(after.number).toBeGreaterThan(before.number);
    const { X509Crl } = await import("@peculiar/x509");
    const crl = new X509Crl(new Uint8Array(after.der));
    expect(crl.entries.map((e) => e.serialNumber.toLowerCase())).toEqual([a.serialHex]);
    expect((await changes("cert.revoked")).map((c) => c.subject)).toEqual([a.serialHex]);
    const [event] = await events("cert.revoked");
    expect(JSON.parse(event!.data)).toMatchObject({ serial: a.serialHex, reason: "keyCompromise", deviceId: "dev-1" });
    await expect(f.pki.certificates.revoke(a.serialHex, "keyCompromise", "cli")).rejects.toMatchObject({ code: "PKI_CERT_ALREADY_REVOKED" });
    await expect(f.pki.certificates.revoke("abcdef", "keyCompromise", "cli")).rejects.toMatchObject({ code: "PKI_CERT_NOT_FOUND" });
    await expect(f.pki.certificates.revoke("zz", "keyCompromise", "cli")).rejects.toMatchObject({ code: "PKI_SERIAL_INVALID" });
    const all = await f.pki.certificates.revokeDevice("dev-1", "cessationOfOperation", "cli");
    expect(all.map((r) => r.serialHex)).toEqual([b.serialHex]);
    expect(await f.pki.certificates.list({ status: "revoked" })).toHaveLength(2);
    expect((await f.pki.crls.current()).number).toBeGreaterThan(after.number);
    expect(await f.pki.certificates.revokedSerials()).toHaveLength(2);
  });

  it("enrollment tokens are single use, expire, and survive a refused CSR", async () => {
    await f.addDevice("dev-1", "pending");
    const { token } = await f.enrollmentTokens.create("dev-1", 3_600_000, "cli");
    expect(JSON.stringify(await f.store.db.selectFrom("enrollment_tokens").selectAll().execute())).not.toContain(parseEnrollmentToken(token)!.secret);
    await expect(f.pki.enrollment.enrollWithToken(token, buildCsr({ subject: cn("dev-2") }).der)).rejects.toMatchObject({ code: "PKI_CSR_SUBJECT_MISMATCH" });
    await expect(f.pki.enrollment.enrollWithToken(token.slice(0, -1) + (token.endsWith("A") ? "B" : "A"), buildCsr().der)).rejects.toMatchObject({ code: "PKI_ENROLL_TOKEN_INVALID" });
    const issued = await f.pki.enrollment.enrollWithToken(token, buildCsr({ subject: cn("dev-1") }).der);
    expect(issued.deviceId).toBe("dev-1");
    await expect(f.pki.enrollment.enrollWithToken(token, buildCsr().der)).rejects.toMatchObject({ code: "PKI_ENROLL_TOKEN_USED" });
    const short = await f.enrollmentTokens.create("dev-1", 1000, "cli");
    await f.store.db.updateTable("enrollment_tokens").set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where("id", "=", short.record.id).execute();
    await expect(f.pki.enrollment.enrollWithToken(short.token, buildCsr().der)).rejects.toMatchObject({ code: "PKI_ENROLL_TOKEN_EXPIRED" });
    await expect(f.pki.enrollment.enrollWithToken("moat-et_nope", buildCsr().der)).rejects.toMatchObject({ code: "PKI_ENROLL_TOKEN_INVALID" });
  });

  it("re-enrollment supersedes the old certificate and refuses revoked, foreign and unknown ones", async () => {
    await f.addDevice("dev-1");
    await f.addDevice("dev-2");
    const first = await f.pki.certificates.issueFromCsr({ deviceId: "dev-1", csr: buildCsr().der, actor: "cli" });
    const other = await f.pki.certificates.issueFromCsr({ deviceId: "dev-2", csr: buildCsr().der, actor: "cli" });
    await expect(f.pki.enrollment.reenroll(first.certificateDer, buildCsr({ subject: cn("dev-2") }).der)).rejects.toMatchObject({ code: "PKI_REENROLL_DEVICE_MISMATCH" });
    const renewed = await f.pki.enrollment.reenroll(first.certificateDer, buildCsr({ subject: cn("dev-1") }).der);
    expect(renewed.deviceId).toBe("dev-1");
    // Grace 0: the superseded certificate is revoked at once, as with `moat cert rotate`.
    expect(await f.pki.certificates.get(first.serialHex)).toMatchObject({ supersededBy: renewed.serialHex, status: "revoked", revocationReason: "superseded" });
    await expect(f.pki.enrollment.reenroll(first.certificateDer, buildCsr().der)).rejects.toMatchObject({ code: "PKI_REENROLL_CERT_REVOKED" });
    await f.pki.certificates.revoke(other.serialHex, "keyCompromise", "cli");
    await expect(f.pki.enrollment.reenroll(other.certificateDer, buildCsr().der)).rejects.toMatchObject({ code: "PKI_REENROLL_CERT_REVOKED" });
    const root = Buffer.from((await f.registry.rootPem()).replace(/-----[^-]+-----|\s/g, ""), "base64");
    await expect(f.pki.enrollment.reenroll(root, buildCsr().der)).rejects.toMatchObject({ code: "PKI_REENROLL_CERT_UNKNOWN" });
    await f.store.db.updateTable("certificates").set({ not_after: new Date(Date.now() - 1000).toISOString() }).where("serial", "=", renewed.serialHex).execute();
    await expect(f.pki.enrollment.reenroll(renewed.certificateDer, buildCsr().der)).rejects.toMatchObject({ code: "PKI_REENROLL_CERT_EXPIRED" });
  });

  it("re-enrolls only with the current certificate; a lost answer is fetched again with the same key, never minted twice", async () => {
    const g = await createPkiFixture(dialect, { rotationGraceMs: 86_400_000 });
    try {
      await g.addDevice("dev-1");
      const first = await g.pki.certificates.issueFromCsr({ deviceId: "dev-1", csr: buildCsr().der, actor: "cli" });
      // Another certificate issued beside it: re-enrollment leaves one current certificate, not two.
      const beside = await g.pki.certificates.issueFromCsr({ deviceId: "dev-1", csr: buildCsr().der, actor: "cli" });
      const newKey = buildCsr();
      const renewed = await g.pki.enrollment.reenroll(first.certificateDer, newKey.der);
      const current = async () => (await g.pki.certificates.list({ deviceId: "dev-1", status: "active" })).map((c) => c.serialHex);
      expect(await current()).toEqual([renewed.serialHex]);
      expect((await g.pki.certificates.get(beside.serialHex)).supersededBy).toBe(renewed.serialHex);
      // The answer was lost: the retry with the old certificate and the same key gets the same certificate.
      const again = await g.pki.enrollment.reenroll(first.certificateDer, buildCsr({ key: newKey.privateKey }).der);
      expect([again.serialHex, again.certificateDer.equals(renewed.certificateDer)]).toEqual([renewed.serialHex, true]);
      // A superseded certificate (still inside its grace period) mints nothing with any other key.
      const before = await g.pki.certificates.list({ deviceId: "dev-1" }).then((all) => all.length);
      for (const old of [first, beside])
        await expect(g.pki.enrollment.reenroll(old.certificateDer, buildCsr().der)).rejects.toMatchObject({ code: "PKI_REENROLL_CERT_SUPERSEDED" });
      expect(await current()).toEqual([renewed.serialHex]);
      expect(await g.pki.certificates.list({ deviceId: "dev-1" }).then((all) => all.length)).toBe(before);
      // Once the current certificate re-enrolls, the old one cannot fetch anything any more.
      const third = await g.pki.enrollment.reenroll(renewed.certificateDer, buildCsr().der);
      await expect(g.pki.enrollment.reenroll(first.certificateDer, buildCsr({ key: newKey.privateKey }).der)).rejects.toMatchObject({ code: "PKI_REENROLL_CERT_SUPERSEDED" });
      expect(await current()).toEqual([third.serialHex]);
      // Two re-enrollments with one certificate at the same time: one wins, one current certificate.
      const race = await Promise.allSettled([g.pki.enrollment.reenroll(third.certificateDer, buildCsr().der), g.pki.enrollment.reenroll(third.certificateDer, buildCsr().der)]);
      expect(race.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      expect(race.find((r) => r.status === "rejected")).toMatchObject({ reason: { code: "PKI_REENROLL_CERT_SUPERSEDED" } });
      expect(await current()).toHaveLength(1);
    } finally {
      await g.close();
    }
  });

  it("rotates a device, warns once about expiring certificates, and rotates the issuing CA", async () => {
    await f.addDevice("dev-1");
    const old = await f.pki.certificates.issueFromCsr({ deviceId: "dev-1", csr: buildCsr().der, actor: "cli", days: 10 });
    expect((await f.pki.tick()).expiring).toBe(1);
    expect((await f.pki.tick()).expiring).toBe(0);
    expect(await events("cert.expiring")).toHaveLength(1);
    expect(await f.pki.certificates.list({ expiringBefore: new Date(Date.now() + 30 * 86_400_000).toISOString() })).toHaveLength(1);
    const rotated = await f.pki.certificates.rotate({ deviceId: "dev-1", actor: "cli" });
    expect(rotated.superseded).toEqual([old.serialHex]);
    expect(rotated.issued.privateKeyPkcs8Der?.length).toBeGreaterThan(0);
    expect(await f.pki.certificates.get(old.serialHex)).toMatchObject({ status: "revoked", revocationReason: "superseded" });

    const previousIssuer = (await f.registry.active("issuing")).serialHex;
    const next = await f.registry.rotateIssuer({ trustDomain: TRUST_DOMAIN }, "cli");
    f.pki.onChange({ seq: 0, kind: "ca.changed", subject: next.serialHex, data: { role: "issuing", previous: "00" }, createdAt: new Date().toISOString() });
    const fresh = await f.pki.certificates.issueFromCsr({ deviceId: "dev-1", csr: buildCsr().der, actor: "cli" });
    expect((await f.pki.certificates.get(fresh.serialHex)).issuerSerialHex).toBe(next.serialHex);
    // The old issuing CA still revokes and lists on its own CRL.
    await f.pki.certificates.revoke(rotated.issued.serialHex, "keyCompromise", "cli");
    const oldCrl = await f.pki.crls.current(previousIssuer);
    const { X509Crl } = await import("@peculiar/x509");
    expect(new X509Crl(new Uint8Array(oldCrl.der)).entries.map((e) => e.serialNumber.toLowerCase())).toContain(rotated.issued.serialHex);
    expect(new X509Crl(new Uint8Array((await f.pki.crls.current()).der)).entries).toHaveLength(0);
    expect((await f.pki.issuers.issuingCas()).length).toBe(2);
  });
});
