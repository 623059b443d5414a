/**
 * The catalogue of checks: one rule per problem the scanner can report, with its severity, the
 * remediation, and where it sits in OWASP IoT Top 10 (2018) and ETSI EN 303 645 V2.1.1.
 *
 * OWASP: I1 weak/default passwords, I2 insecure network services, I5 outdated components,
 * I6 privacy, I7 insecure data transfer, I9 insecure default settings.
 * ETSI: 5.1-1 no universal default passwords, 5.1-5 brute-force mitigation, 5.5-1 best-practice
 * cryptography for communication, 5.5-5 security-relevant functions only after authentication,
 * 5.5-7 confidentiality of critical security parameters in transit, 5.6-1 unused interfaces
 * disabled, 5.6-2 minimal unauthenticated disclosure, 5.8-2 sensitive personal data protected in transit.
 */
import type { Finding, OwaspIotCategory, Severity, Transport } from "./types.js";

export interface FindingRule {
  id: string;
  severity: Severity;
  title: string;
  remediation: string;
  owasp: OwaspIotCategory[];
  etsi: string[];
}

const rules = [
  {
    id: "telnet-plaintext",
    severity: "high",
    title: "Telnet service: logins and sessions travel in clear text",
    remediation: "Disable Telnet; use SSH with key authentication for maintenance, or no remote shell at all.",
    owasp: ["I2", "I7", "I9"],
    etsi: ["5.5-1", "5.5-7", "5.6-1"],
  },
  {
    id: "ftp-plaintext",
    severity: "high",
    title: "FTP service: credentials and files travel in clear text",
    remediation: "Disable FTP; transfer files over SFTP or HTTPS, and deliver firmware through signed updates.",
    owasp: ["I2", "I7"],
    etsi: ["5.5-1", "5.5-7", "5.6-1"],
  },
  {
    id: "http-plaintext",
    severity: "medium",
    title: "HTTP without TLS",
    remediation: "Serve the interface over HTTPS only (TLS 1.2+) and redirect or close the plain-HTTP port.",
    owasp: ["I2", "I7"],
    etsi: ["5.5-1"],
  },
  {
    id: "http-pki-revocation",
    severity: "info",
    title: "Plain-HTTP certificate status service (CRL/OCSP)",
    remediation: "Nothing to fix: CRLs and OCSP responses are signed and are served over plain HTTP on purpose (RFC 5280 §4.2.1.13, RFC 6960 Appendix A); keep anything else off this port.",
    owasp: ["I7"],
    etsi: ["5.5-1"],
  },
  {
    id: "http-basic-plaintext",
    severity: "high",
    title: "HTTP Basic authentication over plain HTTP exposes passwords",
    remediation: "Move the login behind TLS; Basic credentials are only base64-encoded (RFC 7617 §4).",
    owasp: ["I1", "I7"],
    etsi: ["5.5-7"],
  },
  {
    id: "mqtt-plaintext",
    severity: "high",
    title: "MQTT without TLS",
    remediation: "Serve MQTT over TLS (8883) with client certificates; close 1883 or bind it to loopback.",
    owasp: ["I2", "I7"],
    etsi: ["5.5-1", "5.5-7"],
  },
  {
    id: "mqtt-anonymous",
    severity: "high",
    title: "MQTT broker accepts clients without credentials",
    remediation: "Require authentication (client certificates or tokens) and deny anonymous connections.",
    owasp: ["I2", "I9"],
    etsi: ["5.5-5", "5.6-2"],
  },
  {
    id: "mqtt-anonymous-read-all",
    severity: "critical",
    title: "Anonymous MQTT clients may subscribe to every topic (#)",
    remediation: "Deny anonymous access, and give each client an ACL limited to its own topics.",
    owasp: ["I2", "I6", "I9"],
    etsi: ["5.5-5", "5.6-2", "5.8-2"],
  },
  {
    id: "mqtt-anonymous-read-sys",
    severity: "medium",
    title: "Anonymous MQTT clients may read broker internals ($SYS/#)",
    remediation: "Restrict $SYS topics to operators; they disclose versions, client counts and load.",
    owasp: ["I2", "I9"],
    etsi: ["5.6-2"],
  },
  {
    id: "coap-no-dtls",
    severity: "medium",
    title: "CoAP answers without DTLS",
    remediation: "Use CoAP over DTLS (coaps, 5684) or OSCORE (RFC 8613), and drop plain CoAP on 5683.",
    owasp: ["I2", "I7"],
    etsi: ["5.5-1"],
  },
  {
    id: "bacnet-exposed",
    severity: "medium",
    title: "BACnet/IP answers unauthenticated requests",
    remediation: "Keep BACnet/IP on an isolated building-automation segment, or use BACnet Secure Connect.",
    owasp: ["I2", "I7"],
    etsi: ["5.5-1", "5.6-1"],
  },
  {
    id: "ssh-protocol-1",
    severity: "high",
    title: "SSH server offers protocol version 1",
    remediation: "Disable SSH protocol 1; it has known cryptographic weaknesses.",
    owasp: ["I5", "I7"],
    etsi: ["5.5-1"],
  },
  {
    id: "default-credentials-telnet",
    severity: "critical",
    title: "Telnet accepts a well-known default login",
    remediation: "Remove default accounts; give each device a unique password or, better, disable Telnet.",
    owasp: ["I1", "I9"],
    etsi: ["5.1-1", "5.1-5"],
  },
  {
    id: "default-credentials-http",
    severity: "critical",
    title: "HTTP Basic authentication accepts a well-known default login",
    remediation: "Remove default accounts; require a unique per-device password set at first use.",
    owasp: ["I1", "I9"],
    etsi: ["5.1-1", "5.1-5"],
  },
  {
    id: "default-credentials-mqtt",
    severity: "critical",
    title: "MQTT broker accepts a well-known default login",
    remediation: "Remove default accounts; authenticate clients with per-device certificates or tokens.",
    owasp: ["I1", "I9"],
    etsi: ["5.1-1", "5.1-5"],
  },
  {
    id: "auth-accepts-any-credentials",
    severity: "critical",
    title: "Service accepts a made-up user name and password",
    remediation: "Fix the authentication check: the service lets anyone in whatever they type.",
    owasp: ["I1", "I2"],
    etsi: ["5.5-5"],
  },
  {
    id: "tls-legacy-version",
    severity: "medium",
    title: "TLS 1.0 or 1.1 accepted",
    remediation: "Accept TLS 1.2 and 1.3 only (RFC 8996 deprecates TLS 1.0 and 1.1).",
    owasp: ["I5", "I7"],
    etsi: ["5.5-1"],
  },
  {
    id: "tls-weak-cipher",
    severity: "high",
    title: "Weak TLS cipher suites accepted",
    remediation: "Offer only AEAD suites with ephemeral key exchange (ECDHE with AES-GCM or ChaCha20-Poly1305).",
    owasp: ["I7"],
    etsi: ["5.5-1"],
  },
  {
    id: "tls-no-forward-secrecy",
    severity: "low",
    title: "TLS static-RSA key exchange accepted (no forward secrecy)",
    remediation: "Disable TLS_RSA_* suites; use ECDHE key exchange.",
    owasp: ["I7"],
    etsi: ["5.5-1"],
  },
  {
    id: "tls-cbc-suite",
    severity: "medium",
    title: "TLS CBC cipher suites accepted",
    remediation: "Offer only AEAD suites (AES-GCM, ChaCha20-Poly1305); CBC suites in TLS 1.2 are open to padding-oracle and Lucky13 timing attacks.",
    owasp: ["I7"],
    etsi: ["5.5-1"],
  },
  {
    id: "tls-sha1-mac-suite",
    severity: "low",
    title: "TLS suites with a SHA-1 MAC accepted",
    remediation: "Drop the *-SHA suites; use AEAD suites, which need no separate MAC.",
    owasp: ["I7"],
    etsi: ["5.5-1"],
  },
  {
    id: "tls-non-ecdhe-suite",
    severity: "medium",
    title: "TLS suites without ECDHE key exchange accepted",
    remediation: "Use ECDHE key exchange only: static RSA has no forward secrecy, and finite-field DHE is slow and often run with weak groups.",
    owasp: ["I7"],
    etsi: ["5.5-1"],
  },
  {
    id: "tls-cert-expired",
    severity: "high",
    title: "TLS certificate has expired",
    remediation: "Renew the certificate and automate renewal (e.g. EST re-enrollment) before notAfter.",
    owasp: ["I7", "I8"],
    etsi: ["5.5-1"],
  },
  {
    id: "tls-cert-not-yet-valid",
    severity: "high",
    title: "TLS certificate is not yet valid",
    remediation: "Check the device clock and the certificate's notBefore; issue with a correct validity period.",
    owasp: ["I7", "I8"],
    etsi: ["5.5-1"],
  },
  {
    id: "tls-cert-self-signed",
    severity: "medium",
    title: "TLS certificate is self-signed",
    remediation: "Issue the service certificate from the fleet CA so clients can verify it.",
    owasp: ["I7"],
    etsi: ["5.5-1"],
  },
  {
    id: "tls-cert-untrusted",
    severity: "medium",
    title: "TLS certificate does not chain to a trusted root",
    remediation: "Serve the full chain from a CA the clients trust (pass a private root to the scanner with --ca).",
    owasp: ["I7"],
    etsi: ["5.5-1"],
  },
  {
    id: "tls-hostname-mismatch",
    severity: "medium",
    title: "TLS certificate does not name the host",
    remediation: "Put the service's DNS names and IP addresses in the certificate's subjectAltName (RFC 6125 §6).",
    owasp: ["I7"],
    etsi: ["5.5-1"],
  },
  {
    id: "tls-small-key",
    severity: "high",
    title: "TLS certificate key is too small",
    remediation: "Use RSA of at least 2048 bits or ECDSA P-256 or stronger.",
    owasp: ["I7"],
    etsi: ["5.5-1"],
  },
  {
    id: "tls-weak-signature",
    severity: "medium",
    title: "TLS certificate signed with MD5 or SHA-1",
    remediation: "Reissue the certificate with a SHA-256 (or stronger) signature.",
    owasp: ["I7"],
    etsi: ["5.5-1"],
  },
] as const satisfies readonly FindingRule[];

export type FindingId = (typeof rules)[number]["id"];

/** Every rule, by id. */
export const FINDING_RULES: ReadonlyMap<FindingId, FindingRule> = new Map(rules.map((rule) => [rule.id, rule as FindingRule]));

/** A finding of rule `id` on one service. */
export function finding(id: FindingId, where: { address: string; port: number; transport: Transport }, evidence: string): Finding {
  const rule = FINDING_RULES.get(id)!;
  return {
    id,
    severity: rule.severity,
    title: rule.title,
    evidence,
    remediation: rule.remediation,
    owasp: [...rule.owasp],
    etsi: [...rule.etsi],
    address: where.address,
    port: where.port,
    transport: where.transport,
  };
}

/** Severity order, most severe first. */
export const SEVERITY_ORDER: readonly Severity[] = ["critical", "high", "medium", "low", "info"];
