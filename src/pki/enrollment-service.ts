import { createHash, randomBytes, timingSafeEqual, X509Certificate } from "node:crypto";
import { MoatError } from "../errors.js";
import { parseCertificate, fingerprintOf } from "./certificate.js";
import type { CertificateService, IssuedCertificate } from "./certificate-service.js";
import { verifyCsr } from "./csr.js";
import { formatName } from "./name.js";
import { OID } from "./oids.js";
import { toPem } from "./pem.js";
import type { EnrollmentTokenRecord, ManufacturerCaRecord, PkiStore } from "./ports.js";

const TOKEN_PREFIX = "moat-et";
const TOKEN_PATTERN = /^moat-et_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
export const DEFAULT_ENROLL_TOKEN_TTL_MS = 3_600_000;
const MAX_ENROLL_TOKEN_TTL_MS = 30 * 86_400_000;

const sha256Hex = (text: string): string => createHash("sha256").update(text).digest("hex");

/**
 * EST enrollment (RFC 7030 §4.2): one-time enrollment tokens, zero-touch enrollment with factory
 * (IDevID) certificates from trusted manufacturer CAs, and re-enrollment with the current certificate.
 */
export class EnrollmentService {
  constructor(
    private readonly store: PkiStore,
    private readonly certificates: CertificateService,
  ) {}

  /** Creates a single-use token for one device; only its hash is stored. The token is shown once. */
  async createToken(deviceId: string, ttlMs: number, actor: string): Promise<{ token: string; record: EnrollmentTokenRecord }> {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > MAX_ENROLL_TOKEN_TTL_MS)
      throw new MoatError("PKI_DURATION_INVALID", `enrollment token TTL must be between 1 second and 30 days`);
    const id = randomBytes(8).toString("hex");
    const secret = randomBytes(32).toString("base64url");
    const now = new Date();
    const record: EnrollmentTokenRecord = {
      id,
      deviceId,
      secretHash: sha256Hex(secret),
      createdAt: now.toISOString(),
      createdBy: actor,
      expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
      usedAt: null,
    };
    await this.store.transact(async (uow) => {
      const device = await uow.devices.get(deviceId);
      if (!device) throw new MoatError("DEVICE_NOT_FOUND", `no device ${deviceId}`);
      if (device.status !== "active" && device.status !== "pending")
        throw new MoatError("PKI_DEVICE_NOT_ELIGIBLE", `device ${deviceId} is ${device.status}; only active or pending devices can enroll`);
      await uow.enrollmentTokens.insert(record);
      await uow.events.append({ type: "enroll_token.created", actor, subject: deviceId, data: { tokenId: id, expiresAt: record.expiresAt } });
    });
    return { token: `${TOKEN_PREFIX}_${id}_${secret}`, record };
  }

  listTokens(deviceId?: string): Promise<EnrollmentTokenRecord[]> {
    return this.store.enrollmentTokens.list(deviceId);
  }

  /** `simpleenroll` with a token: the token is consumed in the same transaction as the issuance, so a refused CSR leaves it unused. */
  async enrollWithToken(token: string, csrInput: string | Buffer): Promise<IssuedCertificate> {
    const match = TOKEN_PATTERN.exec(token);
    if (!match) throw new MoatError("PKI_ENROLL_TOKEN_INVALID", "the enrollment token is not valid");
    const [, id, secret] = match as unknown as [string, string, string];
    const csr = verifyCsr(csrInput);
    const signer = await this.certificates.signer();
    return this.store.transact(async (uow) => {
      const record = await uow.enrollmentTokens.get(id);
      const presented = Buffer.from(sha256Hex(secret), "hex");
      // Constant-time comparison of the hashes; a missing record compares against a dummy.
      const expected = Buffer.from(record?.secretHash ?? "0".repeat(64), "hex");
      if (!record || !timingSafeEqual(presented, expected)) throw new MoatError("PKI_ENROLL_TOKEN_INVALID", "the enrollment token is not valid");
      if (record.usedAt) throw new MoatError("PKI_ENROLL_TOKEN_USED", "the enrollment token was already used");
      if (Date.parse(record.expiresAt) <= Date.now()) throw new MoatError("PKI_ENROLL_TOKEN_EXPIRED", `the enrollment token expired at ${record.expiresAt}`);
      if (!(await uow.enrollmentTokens.markUsed(id, new Date().toISOString()))) throw new MoatError("PKI_ENROLL_TOKEN_USED", "the enrollment token was already used");
      return this.certificates.issueIn(uow, { deviceId: record.deviceId, csr, actor: `device:${record.deviceId}`, via: "est-token", signer });
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
   * `simplereenroll` (RFC 7030 §4.2.2): the client certificate must be one Moat issued, unrevoked and
   * unexpired; the CSR must name the same device. The old certificate is superseded.
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
    return this.store.transact(async (uow) => {
      const record = await uow.certificates.get(serialHex);
      if (!record || !record.certificateDer.equals(clientCertificateDer)) throw new MoatError("PKI_REENROLL_CERT_UNKNOWN", "the client certificate was not issued by Moat");
      if (record.status === "revoked") throw new MoatError("PKI_REENROLL_CERT_REVOKED", `certificate ${serialHex} is revoked (${record.revocationReason})`);
      if (Date.parse(record.notAfter) <= Date.now()) throw new MoatError("PKI_REENROLL_CERT_EXPIRED", `certificate ${serialHex} expired at ${record.notAfter}`);
      if (record.revokeAfter && Date.parse(record.revokeAfter) <= Date.now()) throw new MoatError("PKI_REENROLL_CERT_REVOKED", `certificate ${serialHex} was superseded`);
      const named = csr.subject.find((a) => a.type === OID.commonName)?.value;
      if (named !== undefined && named !== record.deviceId)
        throw new MoatError("PKI_REENROLL_DEVICE_MISMATCH", `the CSR names ${named} but the client certificate belongs to ${record.deviceId}`);
      return this.certificates.issueIn(uow, { deviceId: record.deviceId, csr, actor: `device:${record.deviceId}`, supersedes: serialHex, via: "est-reenroll", signer });
    });
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
