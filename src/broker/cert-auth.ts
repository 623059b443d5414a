/**
 * Client-certificate checks on top of the TLS handshake. The listener requests a certificate but does
 * not reject the handshake itself (`rejectUnauthorized: false`), so that every refusal becomes a
 * CONNACK with a reason and an `auth.failed` event instead of a bare socket hang-up, and so that
 * token-authenticated devices without certificates can use the same port.
 */
import { X509Certificate } from "node:crypto";
import type { DetailedPeerCertificate, TLSSocket } from "node:tls";

/** Serials compare as lower-case hex without leading zeros (DER may add a 00 to keep them positive). */
export function normalizeSerial(serial: string): string {
  const hex = serial.replace(/[^0-9a-fA-F]/g, "").toLowerCase().replace(/^0+/, "");
  return hex === "" ? "0" : hex;
}

export type CertFailure = "cert_untrusted" | "cert_expired" | "cert_not_yet_valid" | "cert_wrong_issuer" | "cert_no_cn";

export interface CertIdentity {
  ok: true;
  commonName: string;
  serial: string;
  /** notAfter in epoch ms; the session ends then. */
  notAfter: number;
}

export interface CertRefused {
  ok: false;
  reason: CertFailure;
  detail?: string;
}

/** SHA-256 fingerprints (colon-separated upper-case hex, as node prints them) of the issuing CAs. */
export function fingerprintsOf(pems: readonly string[]): Set<string> {
  const set = new Set<string>();
  for (const pem of pems) {
    for (const block of pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
      set.add(new X509Certificate(block).fingerprint256);
    }
  }
  return set;
}

/** The client certificate, or null when the client sent none. */
export function peerCertificateOf(socket: TLSSocket): DetailedPeerCertificate | null {
  const cert: DetailedPeerCertificate = socket.getPeerCertificate(true);
  if (!cert || Object.keys(cert).length === 0 || !cert.raw) return null;
  return cert;
}

/**
 * Checks the verified chain: the handshake must have verified it against Moat's trust anchors, and the
 * certificate must be signed directly by one of the issuing CAs (not by another CA under the root).
 */
export function checkPeerCertificate(socket: TLSSocket, cert: DetailedPeerCertificate, issuingCaFingerprints: ReadonlySet<string>): CertIdentity | CertRefused {
  if (!socket.authorized) {
    const code = String(socket.authorizationError ?? "UNKNOWN");
    if (code === "CERT_HAS_EXPIRED") return { ok: false, reason: "cert_expired", detail: code };
    if (code === "CERT_NOT_YET_VALID") return { ok: false, reason: "cert_not_yet_valid", detail: code };
    return { ok: false, reason: "cert_untrusted", detail: code };
  }
  const issuer = cert.issuerCertificate;
  if (!issuer || !issuingCaFingerprints.has(issuer.fingerprint256) || issuer.fingerprint256 === cert.fingerprint256)
    return { ok: false, reason: "cert_wrong_issuer" };
  const cn = cert.subject?.CN;
  const commonName = Array.isArray(cn) ? null : cn;
  if (!commonName) return { ok: false, reason: "cert_no_cn" };
  return { ok: true, commonName, serial: normalizeSerial(cert.serialNumber), notAfter: Date.parse(cert.valid_to) };
}
