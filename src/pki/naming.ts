import { isIP } from "node:net";
import { MoatError } from "../errors.js";
import type { ParsedCertificate } from "./certificate.js";
import { children, readSingle, type Tlv } from "../crypto/index.js";
import { OID } from "./oids.js";

/** Trust domains are lower-case DNS-style names (they appear in subjects and `urn:moat:<td>:…` URIs). */
const TRUST_DOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function assertTrustDomain(trustDomain: string): void {
  if (!TRUST_DOMAIN.test(trustDomain))
    throw new MoatError("PKI_TRUST_DOMAIN_INVALID", `trust domain ${JSON.stringify(trustDomain)} is not a lower-case DNS-style name`);
}

/** Splits host names into DNS names and IP literals, refusing anything else. */
export function classifyHostnames(hostnames: readonly string[]): { type: "dns" | "ip"; value: string }[] {
  if (hostnames.length === 0) throw new MoatError("PKI_HOSTNAME_INVALID", "a server certificate needs at least one host name or IP address");
  return hostnames.map((host) => {
    if (isIP(host)) return { type: "ip" as const, value: host };
    if (DNS_NAME.test(host)) return { type: "dns" as const, value: host.toLowerCase() };
    throw new MoatError("PKI_HOSTNAME_INVALID", `${JSON.stringify(host)} is neither a DNS name nor an IP address`);
  });
}

/** The URLs a CA publishes on the PKI port (RFC 5280 §4.2.1.13, §4.2.2.1; RFC 6960 §3.1). */
export interface PkiUrls {
  /** OCSP responder. */
  ocsp: string;
  /** The CRL a CA with this serial signs (`root` for the root CA). */
  crl(caSerialHex: string | "root"): string;
  /** The DER certificate of a CA (`root` for the root CA). */
  caCert(caSerialHex: string | "root"): string;
}

export const DEFAULT_PUBLIC_URL = "http://127.0.0.1:8080";

export function pkiUrls(publicUrl: string = DEFAULT_PUBLIC_URL): PkiUrls {
  let base: URL;
  try {
    base = new URL(publicUrl);
  } catch (cause) {
    throw new MoatError("CONFIG_INVALID", `publicUrl ${JSON.stringify(publicUrl)} is not a URL`, { cause });
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") throw new MoatError("CONFIG_INVALID", "publicUrl must be http:// or https://");
  const root = base.href.replace(/\/+$/, "");
  return {
    ocsp: `${root}/ocsp`,
    crl: (serial) => `${root}/crl/${serial}`,
    caCert: (serial) => `${root}/ca/${serial}.cer`,
  };
}

/**
 * The URLs a certificate sends relying parties to: its CRL distribution points and its Authority
 * Information Access entries (OCSP, caIssuers), in the order they appear. Every URI in those two
 * extensions is a GeneralName uniformResourceIdentifier, context tag [6].
 */
export function advertisedUrls(cert: ParsedCertificate): string[] {
  const urls: string[] = [];
  const walk = (tlv: Tlv): void => {
    if (tlv.tag === 0x86) urls.push(tlv.content.toString("latin1"));
    else if ((tlv.tag & 0x20) !== 0) for (const child of children(tlv)) walk(child);
  };
  for (const oid of [OID.cRLDistributionPoints, OID.authorityInfoAccess]) {
    const extension = cert.extensions.get(oid);
    if (extension) walk(readSingle(extension.value));
  }
  return urls;
}
