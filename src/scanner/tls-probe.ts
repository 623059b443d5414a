/**
 * TLS probes: one permissive handshake to learn the certificate and the negotiated parameters,
 * then one handshake per protocol version and per weak cipher family. A version or suite counts as
 * accepted once the server has answered with its own key-exchange parameters — seen through the
 * `keylog` event — even when it then refuses the scanner for lacking a client certificate (mTLS).
 */
import { X509Certificate } from "node:crypto";
import { getCiphers, rootCertificates, type ConnectionOptions, type DetailedPeerCertificate, type TLSSocket } from "node:tls";
import { certificateSignatureAlgorithm } from "./certificate-signature.js";
import { permissiveTls, type Endpoint, type ProbeContext } from "./probe-context.js";
import type { CipherSuiteInfo, TlsCertificateInfo, TlsInfo } from "./types.js";

export interface HandshakeOutcome {
  /** The server agreed keys with us (the version and suite are acceptable to it). */
  agreed: boolean;
  /** The handshake finished on our side. */
  completed: boolean;
  protocol: string | null;
  cipher: string | null;
  /** DER of the presented chain, leaf first. */
  chain: Buffer[];
  /** The alert or socket error that ended the connection early, if any. */
  errorCode: string | null;
}

/** After a completed handshake, how long to watch for an mTLS server's "certificate required" alert. */
const ALERT_WATCH_MS = 300;

function presentedChain(socket: TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  let cert = socket.getPeerCertificate(true) as DetailedPeerCertificate | undefined;
  const seen = new Set<string>();
  while (cert && cert.raw && !seen.has(cert.fingerprint256) && chain.length < 10) {
    seen.add(cert.fingerprint256);
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

/**
 * One handshake with `options`; null when TCP itself fails, when the client options select no
 * cipher at all (so the family cannot be offered), or when the run is aborted.
 */
export async function handshake(ctx: ProbeContext, endpoint: Endpoint, options: ConnectionOptions, watchAlert = false): Promise<HandshakeOutcome | null> {
  const result = await ctx.pacer.run(
    () =>
      new Promise<HandshakeOutcome | null>((resolve) => {
        let socket: TLSSocket;
        try {
          socket = ctx.transport.connectTls({ ...options, host: endpoint.address, port: endpoint.port, rejectUnauthorized: false });
        } catch {
          resolve(null); // e.g. "No cipher match": this OpenSSL cannot offer that family
          return;
        }
        const outcome: HandshakeOutcome = { agreed: false, completed: false, protocol: null, cipher: null, chain: [], errorCode: null };
        let connected = false;
        const timer = setTimeout(() => finish(), ctx.connectTimeoutMs);
        const onAbort = () => finish();
        ctx.signal.addEventListener("abort", onAbort, { once: true });
        let finished = false;
        function finish() {
          if (finished) return;
          finished = true;
          clearTimeout(timer);
          ctx.signal.removeEventListener("abort", onAbort);
          if (outcome.chain.length === 0 && outcome.agreed) outcome.chain = presentedChain(socket);
          socket.destroy();
          resolve(connected || outcome.agreed ? outcome : outcome.errorCode ? outcome : null);
        }
        socket.once("connect", () => (connected = true));
        socket.on("keylog", () => {
          outcome.agreed = true;
          outcome.protocol ??= socket.getProtocol();
        });
        socket.once("secureConnect", () => {
          outcome.agreed = true;
          outcome.completed = true;
          outcome.protocol = socket.getProtocol();
          outcome.cipher = socket.getCipher()?.standardName ?? socket.getCipher()?.name ?? null;
          outcome.chain = presentedChain(socket);
          if (watchAlert) setTimeout(finish, ALERT_WATCH_MS).unref();
          else finish();
        });
        socket.on("error", (error: NodeJS.ErrnoException) => {
          outcome.errorCode = error.code ?? error.message;
          finish();
        });
        socket.once("close", () => finish());
      }),
  );
  return result ?? null;
}

const VERSIONS = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"] as const;

/**
 * Weak families as OpenSSL cipher strings, offered alone at security level 0 and at most TLS 1.2
 * (TLS 1.3 suites are all AEAD). Families this OpenSSL build lacks (RC4, DES in OpenSSL 3 without
 * the legacy provider) cannot be offered and are skipped.
 */
const WEAK_FAMILIES: ReadonlyArray<{ family: string; ciphers: string }> = [
  { family: "NULL (no encryption)", ciphers: "eNULL" },
  { family: "anonymous (no authentication)", ciphers: "aNULL" },
  { family: "EXPORT", ciphers: "EXP" },
  { family: "RC4", ciphers: "RC4" },
  { family: "DES", ciphers: "DES:!3DES" },
  { family: "3DES", ciphers: "3DES" },
  { family: "kRSA", ciphers: "kRSA" },
];

/**
 * What is wrong with a cipher suite, judged from its OpenSSL name: CBC (padding oracles, Lucky13),
 * a SHA-1 MAC, key exchange other than ECDHE (static RSA has no forward secrecy; finite-field DHE is
 * often weak), and export or NULL encryption. TLS 1.3 suites have none of these.
 */
export function suiteWeaknesses(openSslName: string): string[] {
  const name = openSslName.toUpperCase();
  if (name.startsWith("TLS_")) return [];
  const weaknesses: string[] = [];
  if (/NULL|EXP/.test(name)) weaknesses.push("export-or-null");
  if (!/GCM|CHACHA20|CCM|NULL/.test(name)) weaknesses.push("cbc");
  if (/-SHA$/.test(name) || name === "SHA") weaknesses.push("sha1-mac");
  if (!name.startsWith("ECDHE-")) weaknesses.push("non-ecdhe");
  return weaknesses;
}

/** Every suite this Node/OpenSSL can offer, TLS 1.3 ones first (OpenSSL names; TLS 1.3 in IANA form). */
function offerableSuites(): { name: string; tls13: boolean }[] {
  return getCiphers().map((lower) => ({ name: lower.toUpperCase(), tls13: lower.startsWith("tls_") }));
}

/**
 * The suites the server accepts, one handshake per suite offered alone (the way testssl.sh and
 * nmap's ssl-enum-ciphers enumerate), at the highest version the server accepted for each family.
 */
async function acceptedSuites(ctx: ProbeContext, endpoint: Endpoint, base: ConnectionOptions, versionsAccepted: readonly string[]): Promise<CipherSuiteInfo[]> {
  const accepted: CipherSuiteInfo[] = [];
  const legacy = ["TLSv1.2", "TLSv1.1", "TLSv1"].find((v) => versionsAccepted.includes(v)) as ConnectionOptions["maxVersion"] | undefined;
  for (const suite of offerableSuites()) {
    if (suite.tls13 ? !versionsAccepted.includes("TLSv1.3") : !legacy) continue;
    const options: ConnectionOptions = suite.tls13
      ? // Node takes the TLS_* names as the TLS 1.3 list; the TLS 1.2 list must still be non-empty (unused at 1.3).
        { ...base, minVersion: "TLSv1.3", maxVersion: "TLSv1.3", ciphers: `${suite.name}:DEFAULT:@SECLEVEL=0` }
      : { ...base, maxVersion: legacy!, ciphers: `${suite.name}:@SECLEVEL=0` };
    const outcome = await handshake(ctx, endpoint, options);
    if (outcome?.agreed) accepted.push({ name: suite.name, protocol: suite.tls13 ? "TLSv1.3" : legacy!, weaknesses: suiteWeaknesses(suite.name) });
  }
  return accepted;
}

let trustedRoots: X509Certificate[] | null = null;
function systemRoots(): X509Certificate[] {
  trustedRoots ??= rootCertificates.flatMap((pem) => {
    try {
      return [new X509Certificate(pem)];
    } catch {
      return [];
    }
  });
  return trustedRoots;
}

function anchorsFrom(pems: readonly string[]): X509Certificate[] {
  const anchors: X509Certificate[] = [];
  for (const pem of pems) {
    for (const block of pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) anchors.push(new X509Certificate(block));
  }
  return anchors;
}

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

/**
 * Path building from the leaf through the presented intermediates to a trust anchor (RFC 5280 §6,
 * signatures and names only; validity dates are reported as their own findings). Returns null when
 * trusted, else why not.
 */
export function chainTrustError(chain: readonly X509Certificate[], anchors: readonly X509Certificate[]): string | null {
  let current = chain[0];
  if (!current) return "no certificate presented";
  for (let depth = 0; depth < 10; depth++) {
    if (anchors.some((anchor) => anchor.fingerprint256 === current!.fingerprint256 || issuedBy(current!, anchor))) return null;
    if (issuedBy(current, current)) return depth === 0 ? "self-signed certificate" : "self-signed certificate in chain";
    const parent = chain.find((candidate) => candidate !== current && issuedBy(current!, candidate));
    if (!parent) return "unable to find the issuer among the presented and trusted certificates";
    current = parent;
  }
  return "certificate chain too long";
}

function describeCertificate(cert: X509Certificate, der: Buffer): TlsCertificateInfo {
  const key = cert.publicKey;
  const details = key.asymmetricKeyDetails ?? {};
  const curveBits: Record<string, number> = { prime256v1: 256, secp384r1: 384, secp521r1: 521, secp224r1: 224, prime192v1: 192, secp256k1: 256 };
  const keyBits = details.modulusLength ?? (details.namedCurve ? (curveBits[details.namedCurve] ?? null) : key.asymmetricKeyType === "ed25519" ? 256 : null);
  return {
    subject: cert.subject.replace(/\n/g, ", "),
    issuer: cert.issuer.replace(/\n/g, ", "),
    validFrom: new Date(cert.validFrom).toISOString(),
    validTo: new Date(cert.validTo).toISOString(),
    serialNumber: cert.serialNumber,
    fingerprint256: cert.fingerprint256,
    subjectAltName: cert.subjectAltName ?? null,
    keyType: key.asymmetricKeyType ?? "unknown",
    keyBits,
    signatureAlgorithm: certificateSignatureAlgorithm(der),
    selfSigned: issuedBy(cert, cert),
  };
}

/** Does the certificate name the host (RFC 6125 §6; IP addresses must be in an iPAddress SAN)? */
function namesHost(cert: X509Certificate, endpoint: Endpoint): { checked: string; matches: boolean } {
  if (endpoint.hostname) return { checked: endpoint.hostname, matches: cert.checkHost(endpoint.hostname, { subject: "default" }) !== undefined };
  return { checked: endpoint.address, matches: cert.checkIP(endpoint.address) !== undefined };
}

function isCertificateRequiredAlert(code: string | null): boolean {
  return code === "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED" || code === "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE";
}

/** Quick check: does this port speak TLS? Returns the first handshake's outcome, or null. */
export async function detectTls(ctx: ProbeContext, endpoint: Endpoint): Promise<HandshakeOutcome | null> {
  const outcome = await handshake(ctx, endpoint, permissiveTls(endpoint), true);
  if (!outcome || !(outcome.agreed || /ALERT|SSL_/.test(outcome.errorCode ?? ""))) return null;
  // An alert proves a TLS server even when no version was agreed (e.g. it wants only TLS 1.3 and
  // this OpenSSL refused); a plain service gives "wrong version number" or a reset instead.
  if (!outcome.agreed && /WRONG_VERSION_NUMBER|UNKNOWN_PROTOCOL|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE/.test(outcome.errorCode ?? "")) return null;
  return outcome;
}

/** Full TLS assessment of a port already known to speak TLS. */
export async function assessTls(ctx: ProbeContext, endpoint: Endpoint, first: HandshakeOutcome): Promise<TlsInfo> {
  const base = permissiveTls(endpoint);
  const versionsAccepted: string[] = [];
  for (const version of VERSIONS) {
    const outcome = await handshake(ctx, endpoint, { ...base, minVersion: version, maxVersion: version });
    if (outcome?.agreed) versionsAccepted.push(version);
  }
  const weakCipherFamilies: string[] = [];
  if (versionsAccepted.some((v) => v !== "TLSv1.3")) {
    for (const { family, ciphers } of WEAK_FAMILIES) {
      const outcome = await handshake(ctx, endpoint, { ...base, maxVersion: "TLSv1.2", ciphers: `${ciphers}:@SECLEVEL=0` });
      if (outcome?.agreed) weakCipherFamilies.push(family);
    }
  }
  const cipherSuites = await acceptedSuites(ctx, endpoint, base, versionsAccepted);
  // Learn the chain from whichever handshake got furthest: TLS 1.3 completes on the client side even
  // against mTLS servers, so retry with it when the first one stopped early.
  let main = first;
  if (main.chain.length === 0 && versionsAccepted.includes("TLSv1.3")) main = (await handshake(ctx, endpoint, { ...base, minVersion: "TLSv1.3" }, true)) ?? main;
  const chain = main.chain.map((der) => new X509Certificate(der));
  const leaf = chain[0] ?? null;
  const host = leaf ? namesHost(leaf, endpoint) : { checked: endpoint.hostname ?? endpoint.address, matches: null };
  return {
    negotiatedProtocol: main.protocol,
    negotiatedCipher: main.cipher,
    versionsAccepted,
    weakCipherFamilies,
    cipherSuites,
    certificate: leaf ? describeCertificate(leaf, main.chain[0]!) : null,
    trustError: leaf ? chainTrustError(chain, [...systemRoots(), ...anchorsFrom(ctx.trustedCa)]) : "no certificate presented",
    clientCertificateRequired: isCertificateRequiredAlert(main.errorCode) && main.agreed,
    hostnameChecked: host.checked,
    hostnameMatches: host.matches,
  };
}
