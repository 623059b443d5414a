/** Shared shapes of the scanner: targets, open ports, service details, findings and the run result. */
import type { Severity } from "../audit/index.js";

export type { Severity };
export type Transport = "tcp" | "udp";

/** One OWASP IoT Top 10 (2018) category, "I1" … "I10". */
export type OwaspIotCategory = "I1" | "I2" | "I3" | "I4" | "I5" | "I6" | "I7" | "I8" | "I9" | "I10";

/** A finding: one problem seen on one service, with the evidence that shows it. */
export interface Finding {
  /** Stable rule id, e.g. `telnet-plaintext`; the SARIF ruleId. */
  id: string;
  severity: Severity;
  title: string;
  /** What was observed, in words an operator can check by hand (never a secret beyond a known default). */
  evidence: string;
  remediation: string;
  /** OWASP IoT Top 10 (2018) categories. */
  owasp: OwaspIotCategory[];
  /** ETSI EN 303 645 provisions, e.g. "5.1-1". */
  etsi: string[];
  address: string;
  port: number;
  transport: Transport;
}

export interface TlsCertificateInfo {
  subject: string;
  issuer: string;
  validFrom: string;
  validTo: string;
  serialNumber: string;
  fingerprint256: string;
  subjectAltName: string | null;
  /** "rsa", "ec", "ed25519", … */
  keyType: string;
  /** Modulus length for RSA/DSA, curve size for EC. */
  keyBits: number | null;
  /** Signature algorithm OID name, e.g. "sha256WithRSAEncryption". */
  signatureAlgorithm: string | null;
  selfSigned: boolean;
}

/** A cipher suite the server accepted when offered alone. */
export interface CipherSuiteInfo {
  /** OpenSSL name (TLS 1.3 suites in their IANA form). */
  name: string;
  /** The highest version it was accepted at. */
  protocol: string;
  /** `cbc`, `sha1-mac`, `non-ecdhe`, `export-or-null`; empty for a sound suite. */
  weaknesses: string[];
}

export interface TlsInfo {
  /** Protocol and cipher of a handshake with permissive client settings. */
  negotiatedProtocol: string | null;
  negotiatedCipher: string | null;
  /** Versions the server completed a handshake for (keys were agreed). */
  versionsAccepted: string[];
  /** Weak cipher families the server agreed to, e.g. "3DES", "kRSA". */
  weakCipherFamilies: string[];
  /** Every suite accepted, one handshake per suite. */
  cipherSuites: CipherSuiteInfo[];
  certificate: TlsCertificateInfo | null;
  /** Node's verdict against the trust store (system roots plus `--ca`); null when trusted. */
  trustError: string | null;
  /** True when the server asked for a client certificate and refused the scanner without one. */
  clientCertificateRequired: boolean;
  hostnameChecked: string;
  hostnameMatches: boolean | null;
}

export type ServiceName = "telnet" | "ssh" | "ftp" | "smtp" | "http" | "mqtt" | "coap" | "bacnet" | "tls" | "unknown";

/** Outcome of the default-credential attempts against one service. */
export interface CredentialCheck {
  service: "telnet" | "http" | "mqtt";
  attempts: number;
  /** The default login that worked, if one did. */
  accepted?: { username: string; password: string };
  /** A made-up login (the control attempt) was accepted: the service checks nothing. */
  acceptsAnything?: boolean;
}

export interface ServiceInfo {
  name: ServiceName;
  /** True when the service runs inside TLS (https, mqtts …). */
  overTls: boolean;
  /** First bytes the service sent, as printable text (control bytes escaped, truncated). */
  banner?: string;
  tls?: TlsInfo;
  /** `revocationOnly`: nothing at / but a CRL (application/pkix-crl) at /crl, like Moat's PKI port. */
  http?: { status: number; server?: string; basicRealm?: string; revocationOnly?: boolean };
  mqtt?: { anonymousReturnCode: number; readAll: boolean | null; readSys: boolean | null; topicsSeen: string[] };
  telnet?: { options: string[] };
  coap?: { responseCode: string; resources?: string };
  credentials?: CredentialCheck;
}

export interface PortResult {
  port: number;
  transport: Transport;
  state: "open" | "open|filtered";
  service?: ServiceInfo;
}

export interface HostResult {
  address: string;
  /** The name the operator gave, when the address came from a host name. */
  hostname?: string;
  ports: PortResult[];
}

export type ScanStatus = "completed" | "timed-out" | "aborted";

export interface ScanResult {
  startedAt: string;
  finishedAt: string;
  status: ScanStatus;
  /** The targets as given. */
  targets: string[];
  portSpec: string;
  /** TCP/UDP port counts probed per host. */
  tcpPortCount: number;
  udpPortCount: number;
  hosts: HostResult[];
  findings: Finding[];
}

export interface ScanProgress {
  phase: "ports" | "services" | "credentials";
  done: number;
  total: number;
}
