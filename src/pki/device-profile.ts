import { MoatError } from "../errors.js";
import { BACKDATE_MS, publicKeyBitsOf, secondsOnly } from "./ca-hierarchy.js";
import { signTbs } from "./certificate.js";
import { explicit, implicitPrimitive, oid, sequence, setOf, smallInteger, tlv, unsignedInteger, utf8String, x509Time, octetString } from "../crypto/index.js";
import { authorityInfoAccess, authorityKeyIdentifier, basicConstraints, crlDistributionPoints, extendedKeyUsage, extension, keyIdentifier, keyUsage } from "./extensions.js";
import { signatureScheme } from "./key-types.js";
import type { Issuer } from "./issuer.js";
import type { PkiUrls } from "./naming.js";
import { OID } from "./oids.js";

const DAY_MS = 86_400_000;

/** Validity rules of the device profile: a default, per-group overrides and a ceiling no request can pass. */
export interface ValidityPolicy {
  defaultDays: number;
  /** `pki.certLifetime`: the default lifetime in milliseconds, when set (it may be minutes); replaces defaultDays. */
  defaultLifetimeMs?: number | undefined;
  maxDays: number;
  groupDays?: Readonly<Record<string, number>>;
}

/**
 * The validity (days, fractional when `pki.certLifetime` is shorter than a day) for a device of `group`
 * asking for `requestedDays`. Over the maximum is refused, not clamped. A request or a group setting
 * wins over the default; the default is `pki.certLifetime` when set, else `pki.certDays`.
 */
export function resolveValidityDays(policy: ValidityPolicy, group: string | null, requestedDays?: number): number {
  if (requestedDays !== undefined) {
    if (!Number.isInteger(requestedDays) || requestedDays < 1 || requestedDays > policy.maxDays)
      throw new MoatError("PKI_VALIDITY_INVALID", `validity of ${requestedDays} days is outside 1..${policy.maxDays}`, { detail: { maxDays: policy.maxDays } });
    return requestedDays;
  }
  const groupDays = group === null ? undefined : policy.groupDays?.[group];
  const defaultDays = policy.defaultLifetimeMs !== undefined ? policy.defaultLifetimeMs / DAY_MS : policy.defaultDays;
  return Math.min(groupDays ?? defaultDays, policy.maxDays);
}

/** The URN that names a device in its SAN (`urn:moat:<trust domain>:device:<id>`). */
export function deviceUrn(trustDomain: string, deviceId: string): string {
  return `urn:moat:${trustDomain}:device:${deviceId}`;
}

export interface DeviceCertificateFields {
  deviceId: string;
  /** Canonical SPKI DER of the (already checked) device key. */
  spkiDer: Buffer;
  serial: Buffer;
  days: number;
  now?: Date;
}

export interface BuiltCertificate {
  der: Buffer;
  notBefore: Date;
  notAfter: Date;
}

/**
 * The device issuance profile, pre-encoded. Everything that does not vary per device (version,
 * signature algorithm, issuer, the O attribute, keyUsage, EKU, basicConstraints, AKI, CDP, AIA)
 * is DER-encoded once; issuing a certificate only encodes the serial, validity, CN, SAN URI and
 * SKI and concatenates. The CA decides every extension; nothing is copied from the request.
 */
export class DeviceCertificateTemplate {
  private readonly head: Buffer;
  private readonly issuerAndSignature: Buffer;
  private readonly organizationRdn: Buffer;
  private readonly leadingExtensions: Buffer;
  private readonly trailingExtensions: Buffer;
  private readonly urnPrefix: string;

  constructor(
    private readonly issuer: Issuer,
    readonly trustDomain: string,
    urls: PkiUrls,
  ) {
    this.head = explicit(0, smallInteger(2));
    this.issuerAndSignature = Buffer.concat([signatureScheme(issuer.keyType).algorithmIdentifier, issuer.certificate.subjectDer]);
    this.organizationRdn = setOf(sequence(oid(OID.organizationName), utf8String(trustDomain)));
    // RFC 5280 §4.2.1.9/§4.2.1.3: CA:false and digitalSignature, both critical; EKU clientAuth (§4.2.1.12).
    this.leadingExtensions = Buffer.concat([basicConstraints(false), keyUsage(["digitalSignature"]), extendedKeyUsage([OID.clientAuth])]);
    this.trailingExtensions = Buffer.concat([
      authorityKeyIdentifier(issuer.keyId),
      crlDistributionPoints(urls.crl(issuer.serialHex)),
      authorityInfoAccess({ ocsp: urls.ocsp, caIssuers: urls.caCert(issuer.serialHex) }),
    ]);
    this.urnPrefix = deviceUrn(trustDomain, "");
  }

  get issuerSerialHex(): string {
    return this.issuer.serialHex;
  }

  /** Encodes and signs one device certificate. `fields` must already be checked (id, key, days). */
  issue(fields: DeviceCertificateFields): BuiltCertificate {
    const now = fields.now ?? new Date();
    const notBefore = secondsOnly(new Date(now.getTime() - BACKDATE_MS));
    const notAfter = secondsOnly(new Date(Math.min(now.getTime() + fields.days * DAY_MS, this.issuer.certificate.notAfter.getTime())));
    if (notAfter.getTime() <= now.getTime()) throw new MoatError("PKI_CA_INVALID", "the issuing CA has expired; rotate it with `moat ca rotate-issuer`");
    const subject = sequence(this.organizationRdn, setOf(sequence(oid(OID.commonName), utf8String(fields.deviceId))));
    const san = extension(OID.subjectAltName, false, sequence(implicitPrimitive(6, Buffer.from(this.urnPrefix + fields.deviceId, "ascii"))));
    const ski = extension(OID.subjectKeyIdentifier, false, octetString(keyIdentifier(publicKeyBitsOf(fields.spkiDer))));
    const tbs = sequence(
      this.head,
      unsignedInteger(fields.serial),
      this.issuerAndSignature,
      sequence(x509Time(notBefore), x509Time(notAfter)),
      subject,
      fields.spkiDer,
      explicit(3, tlv(0x30, Buffer.concat([this.leadingExtensions, san, ski, this.trailingExtensions]))),
    );
    return { der: signTbs(tbs, this.issuer.keyType, this.issuer.privateKey), notBefore, notAfter };
  }
}
