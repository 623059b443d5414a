/**
 * Client-certificate checks on top of the TLS handshake. The listener requests a certificate but does
 * not reject the handshake itself (`rejectUnauthorized: false`), so that every refusal becomes a
 * CONNACK with a reason and an `auth.failed` event instead of a bare socket hang-up, and so that
 * token-authenticated devices without certificates can use the same port.
 */
import { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";

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

/** Parses the issuing CA certificates (PEM, one or more per string). */
export function issuingCasOf(pems: readonly string[]): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const pem of pems) {
    for (const block of pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) out.push(new X509Certificate(block));
  }
  return out;
}

/**
 * The client certificate, or null when the client sent none. `getPeerX509Certificate` parses only the
 * leaf; `getPeerCertificate(true)` would build JS objects for the whole chain on every CONNECT.
 */
export function peerCertificateOf(socket: TLSSocket): X509Certificate | null {
  return socket.getPeerX509Certificate() ?? null;
}

/** The single CN of a distinguished name as node prints it (one `attr=value` per line, specials escaped). */
function commonNameOf(subject: string): string | null {
  const names = subject.split("\n").filter((line) => line.startsWith("CN="));
  if (names.length !== 1) return null;
  const value = names[0]!.slice(3);
  return value.length > 0 ? value : null;
}

/**
 * Checks the verified chain: the handshake must have verified it against Moat's trust anchors, and the
 * certificate must be issued directly by one of the issuing CAs (not by another CA under the root).
 * OpenSSL has verified every signature by then; `checkIssued` matches the issuer name and key id.
 */
export function checkPeerCertificate(socket: TLSSocket, cert: X509Certificate, issuingCas: readonly X509Certificate[]): CertIdentity | CertRefused {
  if (!socket.authorized) {
    const code = String(socket.authorizationError ?? "UNKNOWN");
    if (code === "CERT_HAS_EXPIRED") return { ok: false, reason: "cert_expired", detail: code };
    if (code === "CERT_NOT_YET_VALID") return { ok: false, reason: "cert_not_yet_valid", detail: code };
    return { ok: false, reason: "cert_untrusted", detail: code };
  }
  if (cert.ca || !issuingCas.some((ca) => cert.checkIssued(ca))) return { ok: false, reason: "cert_wrong_issuer" };
  const commonName = commonNameOf(cert.subject);
  if (!commonName) return { ok: false, reason: "cert_no_cn" };
  return { ok: true, commonName, serial: normalizeSerial(cert.serialNumber), notAfter: Date.parse(cert.validTo) };
}
