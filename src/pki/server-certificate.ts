import { MoatError } from "../errors.js";
import { BACKDATE_MS, publicKeyBitsOf, secondsOnly } from "./ca-hierarchy.js";
import { encodeTbsCertificate, randomSerial, signTbs } from "./certificate.js";
import { authorityInfoAccess, authorityKeyIdentifier, basicConstraints, crlDistributionPoints, extendedKeyUsage, keyIdentifier, keyUsage, subjectAltName, subjectKeyIdentifier } from "./extensions.js";
import { loadIssuer, type CaKeyInput } from "./issuer.js";
import { generateKey, type KeyType } from "./key-types.js";
import { moatName } from "./name.js";
import { assertTrustDomain, classifyHostnames, pkiUrls } from "./naming.js";
import { OID } from "./oids.js";
import { toPem } from "./pem.js";

export interface IssueServerCertificateOptions {
  /** The issuing CA; its key may be a software key or an external signer (token). */
  issuing: CaKeyInput;
  /** DNS names and IP literals; the first is also the CN. */
  hostnames: string[];
  trustDomain: string;
  /** Validity in days (default 365, at most 825). */
  days?: number;
  /** Key type of the new server key (default ec-p256: every TLS client supports it). */
  keyType?: KeyType;
  now?: Date;
  publicUrl?: string;
}

export interface ServerCertificate {
  certificatePem: string;
  privateKeyPkcs8Der: Buffer;
  serialHex: string;
  notAfter: Date;
}

const DAY_MS = 86_400_000;
export const SERVER_MAX_DAYS = 825;

/** Issues a TLS server certificate (serverAuth, SANs) for Moat's own listeners with a fresh key. */
export async function issueServerCertificate(options: IssueServerCertificateOptions): Promise<ServerCertificate> {
  assertTrustDomain(options.trustDomain);
  const names = classifyHostnames(options.hostnames);
  const days = options.days ?? 365;
  if (!Number.isInteger(days) || days < 1 || days > SERVER_MAX_DAYS)
    throw new MoatError("PKI_VALIDITY_INVALID", `server certificate validity must be 1..${SERVER_MAX_DAYS} days, got ${days}`);
  const issuer = loadIssuer(options.issuing);
  const keyType = options.keyType ?? "ec-p256";
  const key = await generateKey(keyType);
  const now = options.now ?? new Date();
  const urls = pkiUrls(options.publicUrl);
  const serial = randomSerial();
  // Never outlive the issuing CA (RFC 5280 §6.1.3 would reject the path after it expires anyway).
  const notAfter = secondsOnly(new Date(Math.min(now.getTime() + days * DAY_MS, issuer.certificate.notAfter.getTime())));
  const usages = keyType === "rsa-3072" ? (["digitalSignature", "keyEncipherment"] as const) : (["digitalSignature"] as const);
  const tbs = encodeTbsCertificate(
    {
      serial,
      issuerDer: issuer.certificate.subjectDer,
      subjectDer: moatName(names[0]!.value, options.trustDomain),
      notBefore: secondsOnly(new Date(now.getTime() - BACKDATE_MS)),
      notAfter,
      spkiDer: key.spkiDer,
      extensions: [
        basicConstraints(false),
        keyUsage(usages),
        extendedKeyUsage([OID.serverAuth]),
        subjectAltName(names),
        subjectKeyIdentifier(keyIdentifier(publicKeyBitsOf(key.spkiDer))),
        authorityKeyIdentifier(issuer.keyId),
        crlDistributionPoints(urls.crl(issuer.serialHex)),
        authorityInfoAccess({ ocsp: urls.ocsp, caIssuers: urls.caCert(issuer.serialHex) }),
      ],
    },
    issuer.keyType,
  );
  const der = signTbs(tbs, issuer.keyType, issuer.privateKey);
  return { certificatePem: toPem(der, "CERTIFICATE"), privateKeyPkcs8Der: key.privateKeyPkcs8Der, serialHex: serial.toString("hex"), notAfter };
}
