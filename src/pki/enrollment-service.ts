import { X509Certificate } from "node:crypto";
import { MoatError } from "../errors.js";
import { parseCertificate, fingerprintOf } from "./certificate.js";
import type { CertificateService, IssuedCertificate } from "./certificate-service.js";
import { verifyCsr } from "./csr.js";
import { formatName } from "./name.js";
import { OID } from "./oids.js";
import { toPem } from "./pem.js";
import type { CertificateRecord, ManufacturerCaRecord, PkiStore } from "./ports.js";

/**
 * EST enrollment (RFC 7030 §4.2): with a one-time enrollment token (kept by the identity domain),
 * zero-touch with factory (IDevID) certificates from trusted manufacturer CAs, and re-enrollment
 * with the current certificate.
 */
export class EnrollmentService {
  constructor(
    private readonly store: PkiStore,
    private readonly certificates: CertificateService,
  ) {}

  /** `simpleenroll` with a token: the token is consumed in the same transaction as the issuance, so a refused CSR leaves it unused. */
  async enrollWithToken(token: string, csrInput: string | Buffer): Promise<IssuedCertificate> {
    this.store.enrollmentTokens.checkForm(token);
    const csr = verifyCsr(csrInput);
    const signer = await this.certificates.signer();
    return this.store.transact(async (uow) => {
      const deviceId = await uow.enrollmentTokens.redeem(token);
      return this.certificates.issueIn(uow, { deviceId, csr, actor: `device:${deviceId}`, via: "est-token", signer });
    });
  }

  /**
   * Zero-touch `simpleenroll` with a factory certificate: it must be signed by a trusted
   * manufacturer CA and be within its validity. The device id is its serialNumber attribute (or CN);
   * the device must be registered (active or pending).
   */
  async enrollWithManufacturerCertificate(clientCertificateDer: Buffer, csrInput: string | Buffer): Promise<IssuedCertificate> {
    const deviceId = await this.verifyManufacturerCertificate(clientCertificateDer);
    const csr = verifyCsr(csrInput);
    const signer = await this.certificates.signer();
    return this.store.transact((uow) => this.certificates.issueIn(uow, { deviceId, csr, actor: `device:${deviceId}`, via: "est-idevid", signer }));
  }

  /**
   * `simplereenroll` (RFC 7030 §4.2.2): the client certificate must be the device's current one (Moat
   * issued it, not revoked, not expired, not replaced); the CSR must name the same device. Every current
   * certificate of the device is superseded by the new one.
   *
   * A device whose response was lost retries with its old certificate: if the CSR is for the key of the
   * certificate that replaced it (its signature proves possession), that certificate is sent again and
   * nothing new is issued. Any other request with a replaced certificate is refused, so an old key can
   * never mint certificates.
   */
  async reenroll(clientCertificateDer: Buffer, csrInput: string | Buffer): Promise<IssuedCertificate> {
    let serialHex: string;
    try {
      serialHex = parseCertificate(clientCertificateDer).serialHex;
    } catch (cause) {
      throw new MoatError("PKI_REENROLL_CERT_UNKNOWN", "the client certificate cannot be read", { cause });
    }
    const csr = verifyCsr(csrInput);
    const signer = await this.certificates.signer();
    const outcome = await this.store.transact(async (uow): Promise<IssuedCertificate | { resend: CertificateRecord }> => {
      const record = await uow.certificates.get(serialHex);
      if (!record || !record.certificateDer.equals(clientCertificateDer)) throw new MoatError("PKI_REENROLL_CERT_UNKNOWN", "the client certificate was not issued by Moat");
      if (record.status === "revoked") throw new MoatError("PKI_REENROLL_CERT_REVOKED", `certificate ${serialHex} is revoked (${record.revocationReason})`);
      if (Date.parse(record.notAfter) <= Date.now()) throw new MoatError("PKI_REENROLL_CERT_EXPIRED", `certificate ${serialHex} expired at ${record.notAfter}`);
      if (record.revokeAfter && Date.parse(record.revokeAfter) <= Date.now()) throw new MoatError("PKI_REENROLL_CERT_REVOKED", `certificate ${serialHex} was superseded`);
      if (record.supersededBy !== null) return { resend: this.successorFor(await uow.certificates.get(record.supersededBy), csr.spkiDer, serialHex) };
      const named = csr.subject.find((a) => a.type === OID.commonName)?.value;
      if (named !== undefined && named !== record.deviceId)
        throw new MoatError("PKI_REENROLL_DEVICE_MISMATCH", `the CSR names ${named} but the client certificate belongs to ${record.deviceId}`);
      return this.certificates.issueIn(uow, { deviceId: record.deviceId, csr, actor: `device:${record.deviceId}`, supersedes: serialHex, via: "est-reenroll", signer });
    });
    // Outside the transaction: looking up the issuing CA reads the store (a SQLite connection is not shared).
    if ("resend" in outcome) return this.certificates.issuedView(outcome.resend);
    await this.certificates.settleSuperseded();
    return outcome;
  }

  /** The retry of a re-enrollment whose answer was lost: the successor again, if it is current and the CSR is for its key. */
  private successorFor(successor: CertificateRecord | undefined, spkiDer: Buffer, presented: string): CertificateRecord {
    const current = successor !== undefined && successor.status === "active" && successor.supersededBy === null && Date.parse(successor.notAfter) > Date.now();
    if (!current || !parseCertificate(successor.certificateDer).spkiDer.equals(spkiDer))
      throw new MoatError("PKI_REENROLL_CERT_SUPERSEDED", `certificate ${presented} was replaced; re-enroll with the current certificate`, { detail: { serial: presented } });
    return successor;
  }

  /** `moat ca trust-manufacturer FILE`: accepts only CA certificates (basicConstraints CA:TRUE). */
  async trustManufacturer(pem: string, actor: string): Promise<ManufacturerCaRecord> {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch (cause) {
      throw new MoatError("PKI_MANUFACTURER_CA_INVALID", "the file is not a PEM or DER certificate", { cause });
    }
    if (!cert.ca) throw new MoatError("PKI_MANUFACTURER_CA_INVALID", "the certificate is not a CA (basicConstraints CA:TRUE is missing)");
    if (Date.parse(cert.validTo) <= Date.now()) throw new MoatError("PKI_MANUFACTURER_CA_INVALID", `the CA certificate expired at ${cert.validTo}`);
    const parsed = parseCertificate(cert.raw);
    const record: ManufacturerCaRecord = {
      fingerprint: fingerprintOf(cert.raw),
      subject: formatName(parsed.subject),
      certificatePem: toPem(cert.raw, "CERTIFICATE"),
      notAfter: parsed.notAfter.toISOString(),
      createdAt: new Date().toISOString(),
    };
    await this.store.transact(async (uow) => {
      await uow.manufacturers.insert(record);
      await uow.events.append({ type: "ca.manufacturer_trusted", severity: "medium", actor, subject: record.subject, data: { fingerprint: record.fingerprint } });
    });
    return record;
  }

  listManufacturers(): Promise<ManufacturerCaRecord[]> {
    return this.store.manufacturers.list();
  }

  private async verifyManufacturerCertificate(der: Buffer): Promise<string> {
    let cert: X509Certificate;
    let deviceId: string | undefined;
    try {
      cert = new X509Certificate(der);
      const parsed = parseCertificate(der);
      deviceId = parsed.subject.find((a) => a.type === OID.serialNumberAttribute)?.value ?? parsed.subject.find((a) => a.type === OID.commonName)?.value;
      // A factory certificate must be an end-entity certificate.
      if (cert.ca) throw new Error("a CA certificate cannot enroll");
    } catch (cause) {
      throw new MoatError("PKI_MANUFACTURER_CERT_UNTRUSTED", "the client certificate cannot be used for enrollment", { cause });
    }
    const now = Date.now();
    if (Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) <= now)
      throw new MoatError("PKI_MANUFACTURER_CERT_UNTRUSTED", "the factory certificate is outside its validity period");
    const trusted = await this.store.manufacturers.list();
    const signer = trusted.find((ca) => {
      const caCert = new X509Certificate(ca.certificatePem);
      return Date.parse(caCert.validTo) > now && cert.checkIssued(caCert) && cert.verify(caCert.publicKey);
    });
    if (!signer) throw new MoatError("PKI_MANUFACTURER_CERT_UNTRUSTED", "the client certificate is not signed by a trusted manufacturer CA");
    if (!deviceId) throw new MoatError("PKI_MANUFACTURER_CERT_UNTRUSTED", "the factory certificate names no device (serialNumber or CN)");
    return deviceId;
  }
}
