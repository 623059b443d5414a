import { MoatError } from "../errors.js";
import { fingerprintOf, randomSerial } from "./certificate.js";
import type { CrlService } from "./crl-service.js";
import { verifyCsr, type VerifiedCsr } from "./csr.js";
import { resolveValidityDays, type DeviceCertificateTemplate, type ValidityPolicy } from "./device-profile.js";
import type { Issuer } from "./issuer.js";
import type { IssuerCache } from "./issuer-cache.js";
import { generateKey, type KeyType } from "./key-types.js";
import { formatName, type NameAttribute } from "./name.js";
import { OID } from "./oids.js";
import { toPem } from "./pem.js";
import type { CertificateFilter, CertificateRecord, PkiStore, PkiUnitOfWork } from "./ports.js";
import type { RevocationReason } from "./revocation-reason.js";
import { MAX_PAGE_ITEMS, pageLimit } from "../lib/page.js";

/** A freshly issued device certificate. */
export interface IssuedCertificate {
  serialHex: string;
  deviceId: string;
  certificateDer: Buffer;
  certificatePem: string;
  /** The issuing CA certificate (PEM), for `--out` bundles and EST responses. */
  issuingCaPem: string;
  issuingCaDer: Buffer;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
}

export interface CertificateServiceOptions {
  store: PkiStore;
  issuers: IssuerCache;
  crls: CrlService;
  trustDomain: string;
  validity: ValidityPolicy;
  /** How long a rotated-out (superseded) certificate keeps working before it is revoked. */
  rotationGraceMs: number;
}

export interface IssueRequest {
  deviceId: string;
  csr: string | Buffer;
  days?: number;
  actor: string;
}

/** Statuses that may receive certificates (pending becomes active with its first one). */
/** What signs device certificates: the active issuing CA and its pre-encoded profile. */
export interface Signer {
  issuer: Issuer;
  template: DeviceCertificateTemplate;
}

const ELIGIBLE = new Set(["active", "pending"]);
const MAX_SERIAL_ATTEMPTS = 8;

/** RFC 5280 says nothing of serial collisions; with 126 random bits a retry is practically never needed, but the store decides. */
export class CertificateService {
  constructor(private readonly options: CertificateServiceOptions) {}

  /** Checks a CSR and issues a device certificate from it (`moat cert issue --csr`, the API). */
  async issueFromCsr(request: IssueRequest): Promise<IssuedCertificate> {
    const csr = verifyCsr(request.csr);
    const signer = await this.signer();
    return this.options.store.transact((uow) => this.issueIn(uow, { deviceId: request.deviceId, csr, days: request.days, actor: request.actor, signer }));
  }

  /**
   * Server-side key generation for devices that cannot make keys: the key is returned to the
   * caller (to be written 0600 or handed over) and never stored.
   */
  async issueWithGeneratedKey(request: { deviceId: string; keyType?: KeyType; days?: number; actor: string }): Promise<IssuedCertificate & { privateKeyPkcs8Der: Buffer }> {
    const key = await generateKey(request.keyType ?? "ec-p256");
    const csr: VerifiedCsr = {
      der: Buffer.alloc(0),
      subject: [],
      spkiDer: key.spkiDer,
      publicKey: key.privateKey,
      keyKind: key.keyType === "rsa-3072" ? "rsa" : key.keyType,
      keyBits: key.keyType === "rsa-3072" ? 3072 : key.keyType === "ec-p384" ? 384 : 256,
    };
    const signer = await this.signer();
    const issued = await this.options.store.transact((uow) => this.issueIn(uow, { deviceId: request.deviceId, csr, days: request.days, actor: request.actor, generatedKey: true, signer }));
    return { ...issued, privateKeyPkcs8Der: key.privateKeyPkcs8Der };
  }

  /**
   * The active issuing CA with its device template. Load it before opening a transaction: with
   * SQLite the transaction holds the only connection, so the CA registry cannot be read inside it.
   */
  signer(): Promise<Signer> {
    return this.options.issuers.current();
  }

  /**
   * Issues inside the caller's transaction (EST enrollment consumes its token in the same one).
   * `supersedes` marks an older certificate of the same device as replaced.
   */
  async issueIn(
    uow: PkiUnitOfWork,
    input: { deviceId: string; csr: VerifiedCsr; days?: number; actor: string; signer: Signer; supersedes?: string; generatedKey?: boolean; via?: string },
  ): Promise<IssuedCertificate> {
    const device = await uow.devices.get(input.deviceId);
    if (!device) throw new MoatError("DEVICE_NOT_FOUND", `no device ${input.deviceId}`);
    if (!ELIGIBLE.has(device.status))
      throw new MoatError("PKI_DEVICE_NOT_ELIGIBLE", `device ${device.id} is ${device.status}; only active or pending devices get certificates`, { detail: { status: device.status } });
    assertSubjectNamesDevice(input.csr.subject, device.id, this.options.trustDomain);
    const days = resolveValidityDays(this.options.validity, device.group, input.days);
    const { issuer, template } = input.signer;
    const now = new Date();
    for (let attempt = 0; attempt < MAX_SERIAL_ATTEMPTS; attempt++) {
      const serial = randomSerial();
      const built = template.issue({ deviceId: device.id, spkiDer: input.csr.spkiDer, serial, days, now });
      const record: CertificateRecord = {
        serialHex: serial.toString("hex"),
        deviceId: device.id,
        issuerSerialHex: issuer.serialHex,
        subject: `CN=${device.id}, O=${this.options.trustDomain}`,
        fingerprint: fingerprintOf(built.der),
        keyKind: input.csr.keyKind,
        notBefore: built.notBefore.toISOString(),
        notAfter: built.notAfter.toISOString(),
        status: "active",
        revokedAt: null,
        revocationReason: null,
        supersededBy: null,
        revokeAfter: null,
        expiryNotifiedAt: null,
        createdAt: now.toISOString(),
        certificateDer: built.der,
      };
      if (!(await uow.certificates.insertIfAbsent(record))) continue;
      if (device.status === "pending") await uow.devices.activate(device.id, input.actor);
      if (input.supersedes) await this.supersedeCurrentIn(uow, device.id, input.supersedes, record.serialHex, now);
      const data = {
        serial: record.serialHex,
        deviceId: device.id,
        issuer: issuer.serialHex,
        notAfter: record.notAfter,
        keyKind: record.keyKind,
        ...(input.generatedKey ? { generatedKey: true } : {}),
        ...(input.supersedes ? { supersedes: input.supersedes } : {}),
        ...(input.via ? { via: input.via } : {}),
      };
      await uow.events.append({ type: "cert.issued", severity: "info", actor: input.actor, subject: device.id, data });
      await uow.changes.append({ kind: "cert.issued", subject: device.id, data: { deviceId: device.id, serial: record.serialHex } });
      return {
        serialHex: record.serialHex,
        deviceId: device.id,
        certificateDer: built.der,
        certificatePem: toPem(built.der, "CERTIFICATE"),
        issuingCaPem: issuer.certificatePem,
        issuingCaDer: issuer.certificate.der,
        fingerprint: record.fingerprint,
        notBefore: built.notBefore,
        notAfter: built.notAfter,
      };
    }
    throw new MoatError("PKI_SERIAL_COLLISION", `${MAX_SERIAL_ATTEMPTS} random serials in a row were already taken`);
  }

  async get(serialHex: string): Promise<CertificateRecord> {
    const serial = normalizeSerialHex(serialHex);
    const record = await this.options.store.certificates.get(serial);
    if (!record) throw new MoatError("PKI_CERT_NOT_FOUND", `no certificate with serial ${serial}`);
    return record;
  }

  async list(filter: CertificateFilter = {}): Promise<CertificateRecord[]> {
    return this.options.store.certificates.list({ ...filter, limit: pageLimit(filter.limit, MAX_PAGE_ITEMS) });
  }

  /** Certificates by state, and the active ones that expire within 7 and 30 days (the dashboard's counts). */
  async summary(now: Date = new Date()): Promise<Record<"active" | "revoked" | "expired" | "superseded" | "expiringIn7Days" | "expiringIn30Days", number>> {
    const at = now.toISOString();
    const count = (filter: Omit<CertificateFilter, "after" | "limit">) => this.options.store.certificates.count({ ...filter, now: at });
    const within = (days: number) => new Date(now.getTime() + days * 86_400_000).toISOString();
    const [active, revoked, expired, superseded, expiringIn7Days, expiringIn30Days] = await Promise.all([
      count({ status: "active" }),
      count({ status: "revoked" }),
      count({ status: "expired" }),
      count({ status: "superseded" }),
      count({ expiringBefore: within(7) }),
      count({ expiringBefore: within(30) }),
    ]);
    return { active, revoked, expired, superseded, expiringIn7Days, expiringIn30Days };
  }

  /** Revokes one certificate: change feed row and `cert.revoked` event in the same transaction; then a fresh CRL. */
  async revoke(serialHex: string, reason: RevocationReason, actor: string): Promise<CertificateRecord> {
    const serial = normalizeSerialHex(serialHex);
    const revoked = await this.options.store.transact(async (uow) => {
      const record = await uow.certificates.get(serial);
      if (!record) throw new MoatError("PKI_CERT_NOT_FOUND", `no certificate with serial ${serial}`);
      if (record.status === "revoked")
        throw new MoatError("PKI_CERT_ALREADY_REVOKED", `certificate ${serial} was revoked at ${record.revokedAt} (${record.revocationReason})`);
      return this.revokeIn(uow, record, reason, actor);
    });
    await this.options.crls.refresh(revoked.issuerSerialHex);
    return revoked;
  }

  /** Revokes every unrevoked certificate of a device (e.g. on decommissioning or compromise). */
  async revokeDevice(deviceId: string, reason: RevocationReason, actor: string): Promise<CertificateRecord[]> {
    const revoked = await this.options.store.transact(async (uow) => {
      const device = await uow.devices.get(deviceId);
      if (!device) throw new MoatError("DEVICE_NOT_FOUND", `no device ${deviceId}`);
      const out: CertificateRecord[] = [];
      for (const record of await uow.certificates.activeForDevice(deviceId)) out.push(await this.revokeIn(uow, record, reason, actor));
      return out;
    });
    for (const issuer of new Set(revoked.map((r) => r.issuerSerialHex))) await this.options.crls.refresh(issuer);
    return revoked;
  }

  private async revokeIn(uow: PkiUnitOfWork, record: CertificateRecord, reason: RevocationReason, actor: string): Promise<CertificateRecord> {
    const at = new Date().toISOString();
    if (!(await uow.certificates.revoke(record.serialHex, at, reason)))
      throw new MoatError("PKI_CERT_ALREADY_REVOKED", `certificate ${record.serialHex} is already revoked`);
    const data = { serial: record.serialHex, deviceId: record.deviceId, issuer: record.issuerSerialHex, reason, revokedAt: at };
    await uow.changes.append({ kind: "cert.revoked", subject: record.serialHex, data });
    await uow.events.append({ type: "cert.revoked", severity: reason === "keyCompromise" || reason === "cACompromise" ? "high" : "medium", actor, subject: record.deviceId, data });
    return { ...record, status: "revoked", revokedAt: at, revocationReason: reason, revokeAfter: null };
  }

  /**
   * `moat cert rotate`: a new certificate for the device (from a CSR or a generated key); every
   * older certificate of the device is superseded and revoked once the grace period ends.
   */
  async rotate(request: { deviceId: string; csr?: string | Buffer; keyType?: KeyType; days?: number; actor: string }): Promise<{ issued: IssuedCertificate & { privateKeyPkcs8Der?: Buffer }; superseded: string[] }> {
    const key = request.csr === undefined ? await generateKey(request.keyType ?? "ec-p256") : undefined;
    const csr: VerifiedCsr = key
      ? { der: Buffer.alloc(0), subject: [], spkiDer: key.spkiDer, publicKey: key.privateKey, keyKind: key.keyType === "rsa-3072" ? "rsa" : key.keyType, keyBits: 0 }
      : verifyCsr(request.csr!);
    const signer = await this.signer();
    const result = await this.options.store.transact(async (uow) => {
      const previous = (await uow.certificates.activeForDevice(request.deviceId)).filter((r) => r.supersededBy === null);
      const issued = await this.issueIn(uow, { deviceId: request.deviceId, csr, days: request.days, actor: request.actor, generatedKey: !!key, via: "rotate", signer });
      const revokeAfter = new Date(Date.now() + this.options.rotationGraceMs).toISOString();
      for (const old of previous) await uow.certificates.supersede(old.serialHex, issued.serialHex, revokeAfter);
      await uow.events.append({ type: "cert.rotated", actor: request.actor, subject: request.deviceId, data: { serial: issued.serialHex, superseded: previous.map((r) => r.serialHex), revokeAfter } });
      return { issued, superseded: previous.map((r) => r.serialHex) };
    });
    await this.settleSuperseded();
    return { issued: key ? { ...result.issued, privateKeyPkcs8Der: key.privateKeyPkcs8Der } : result.issued, superseded: result.superseded };
  }

  /** A stored certificate in the shape issuance returns, with the CA that issued it. */
  async issuedView(record: CertificateRecord): Promise<IssuedCertificate> {
    const issuer = (await this.options.issuers.byCaSerial(record.issuerSerialHex)) ?? (await this.signer()).issuer;
    return {
      serialHex: record.serialHex,
      deviceId: record.deviceId,
      certificateDer: record.certificateDer,
      certificatePem: toPem(record.certificateDer, "CERTIFICATE"),
      issuingCaPem: issuer.certificatePem,
      issuingCaDer: issuer.certificate.der,
      fingerprint: record.fingerprint,
      notBefore: new Date(record.notBefore),
      notAfter: new Date(record.notAfter),
    };
  }

  /**
   * Re-enrollment replaces the presented certificate, and with it every other current certificate of the
   * device, so exactly one stays current. Of two concurrent re-enrollments with one certificate only the
   * first replaces it; the other fails (its transaction, and so its certificate, is rolled back).
   */
  private async supersedeCurrentIn(uow: PkiUnitOfWork, deviceId: string, presented: string, by: string, now: Date): Promise<void> {
    const revokeAfter = new Date(now.getTime() + this.options.rotationGraceMs).toISOString();
    if (!(await uow.certificates.supersede(presented, by, revokeAfter)))
      throw new MoatError("PKI_REENROLL_CERT_SUPERSEDED", `certificate ${presented} was already replaced; re-enroll with the current certificate`, { detail: { serial: presented } });
    for (const other of await uow.certificates.activeForDevice(deviceId))
      if (other.supersededBy === null && other.serialHex !== by) await uow.certificates.supersede(other.serialHex, by, revokeAfter);
  }

  /** With no grace period, replaced certificates are revoked at once rather than at the next scheduler pass. */
  async settleSuperseded(): Promise<void> {
    if (this.options.rotationGraceMs === 0) await this.revokeDue();
  }

  /** Revokes (reason superseded) every replaced certificate whose grace period has ended. */
  async revokeDue(now = new Date()): Promise<number> {
    const due = await this.options.store.certificates.dueForRevocation(now.toISOString());
    const issuers = new Set<string>();
    let count = 0;
    for (const record of due) {
      const done = await this.options.store.transact(async (uow) => {
        const current = await uow.certificates.get(record.serialHex);
        if (!current || current.status !== "active") return false;
        await this.revokeIn(uow, current, "superseded", "system");
        return true;
      });
      if (done) {
        count++;
        issuers.add(record.issuerSerialHex);
      }
    }
    for (const issuer of issuers) await this.options.crls.refresh(issuer);
    return count;
  }

  /** Emits `cert.expiring` once per certificate for those expiring within `windowMs`. */
  async notifyExpiring(windowMs: number, now = new Date()): Promise<number> {
    const before = new Date(now.getTime() + windowMs).toISOString();
    const expiring = await this.options.store.certificates.expiringUnnotified(now.toISOString(), before);
    for (const record of expiring) {
      await this.options.store.transact(async (uow) => {
        await uow.certificates.markExpiryNotified(record.serialHex, now.toISOString());
        const daysLeft = Math.max(0, Math.floor((Date.parse(record.notAfter) - now.getTime()) / 86_400_000));
        await uow.events.append({ type: "cert.expiring", severity: "low", actor: "system", subject: record.deviceId, data: { serial: record.serialHex, notAfter: record.notAfter, daysLeft } });
      });
    }
    return expiring.length;
  }

  /** Lower-case hex serials of every revoked, unexpired certificate (for the broker's revocation view). */
  async revokedSerials(now = new Date()): Promise<string[]> {
    const issuers = await this.options.issuers.issuingCas(now);
    const out: string[] = [];
    for (const issuer of issuers) for (const entry of await this.options.store.certificates.revokedFor(issuer.serialHex, now.toISOString())) out.push(entry.serialHex);
    return out;
  }
}

/** Serials are compared as lower-case hex without leading zero pairs beyond the DER minimum. */
export function normalizeSerialHex(serial: string): string {
  const hex = serial.trim().replace(/:/g, "").toLowerCase();
  if (!/^[0-9a-f]{1,40}$/.test(hex)) throw new MoatError("PKI_SERIAL_INVALID", `serial ${JSON.stringify(serial)} is not a hex string of at most 20 bytes`);
  return hex.length % 2 === 1 ? `0${hex}` : hex;
}

/** A CSR subject must be empty or name this device: CN = id, optionally O = trust domain; nothing else. */
export function assertSubjectNamesDevice(subject: readonly NameAttribute[], deviceId: string, trustDomain: string): void {
  if (subject.length === 0) return;
  const commonNames = subject.filter((a) => a.type === OID.commonName);
  const fits =
    commonNames.length === 1 &&
    commonNames[0]!.value === deviceId &&
    subject.every((a) => a.type === OID.commonName || (a.type === OID.organizationName && a.value === trustDomain));
  if (!fits)
    throw new MoatError("PKI_CSR_SUBJECT_MISMATCH", `the CSR subject "${formatName(subject)}" does not name device ${deviceId} (leave it empty or use CN=${deviceId})`);
}
