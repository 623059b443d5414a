/** Turns what the probes observed about one port into findings. Pure: facts in, findings out. */
import { WEAK_SIGNATURE_ALGORITHMS } from "./certificate-signature.js";
import { finding } from "./finding-rules.js";
import { describeConnack } from "./mqtt-packets.js";
import type { Finding, PortResult, TlsInfo } from "./types.js";

const LEGACY_TLS = new Set(["TLSv1", "TLSv1.1"]);
/** Below these a key is breakable or soon will be (NIST SP 800-57 Part 1 Rev. 5 §5.6.1). */
const MIN_RSA_BITS = 2048;
const MIN_EC_BITS = 256;

function tlsFindings(tls: TlsInfo, where: Parameters<typeof finding>[1], now: Date): Finding[] {
  const found: Finding[] = [];
  const legacy = tls.versionsAccepted.filter((v) => LEGACY_TLS.has(v));
  if (legacy.length) found.push(finding("tls-legacy-version", where, `Handshake completed with ${legacy.join(" and ")} (accepted: ${tls.versionsAccepted.join(", ")})`));
  const weak = tls.weakCipherFamilies.filter((f) => f !== "kRSA");
  if (weak.length) found.push(finding("tls-weak-cipher", where, `Server agreed to ${weak.join(", ")} cipher suites when offered only those`));
  if (tls.weakCipherFamilies.includes("kRSA")) found.push(finding("tls-no-forward-secrecy", where, "Server agreed to a TLS_RSA_* suite (static RSA key exchange) when offered only those"));
  const suitesWith = (weakness: string) => tls.cipherSuites.filter((s) => s.weaknesses.includes(weakness)).map((s) => s.name);
  const listed = (names: string[]) => `${names.slice(0, 8).join(", ")}${names.length > 8 ? ` and ${names.length - 8} more` : ""}`;
  const cbc = suitesWith("cbc").filter((n) => !suitesWith("export-or-null").includes(n));
  if (cbc.length) found.push(finding("tls-cbc-suite", where, `CBC suites accepted: ${listed(cbc)}`));
  const sha1 = suitesWith("sha1-mac");
  if (sha1.length) found.push(finding("tls-sha1-mac-suite", where, `Suites with a SHA-1 MAC accepted: ${listed(sha1)}`));
  const nonEcdhe = suitesWith("non-ecdhe");
  if (nonEcdhe.length) found.push(finding("tls-non-ecdhe-suite", where, `Suites without ECDHE key exchange accepted: ${listed(nonEcdhe)}`));
  const exportOrNull = suitesWith("export-or-null");
  if (exportOrNull.length && !weak.length) found.push(finding("tls-weak-cipher", where, `Export or NULL suites accepted: ${listed(exportOrNull)}`));
  const cert = tls.certificate;
  if (!cert) return found;
  const subject = `certificate '${cert.subject}' (serial ${cert.serialNumber})`;
  if (new Date(cert.validTo) < now) found.push(finding("tls-cert-expired", where, `${subject} expired at ${cert.validTo}`));
  if (new Date(cert.validFrom) > now) found.push(finding("tls-cert-not-yet-valid", where, `${subject} is valid only from ${cert.validFrom}`));
  if (cert.selfSigned) found.push(finding("tls-cert-self-signed", where, `${subject} is signed by its own key`));
  else if (tls.trustError) found.push(finding("tls-cert-untrusted", where, `${subject} issued by '${cert.issuer}': ${tls.trustError}`));
  if (tls.hostnameMatches === false)
    found.push(finding("tls-hostname-mismatch", where, `${subject} does not name '${tls.hostnameChecked}' (subjectAltName: ${cert.subjectAltName ?? "none"})`));
  const minimum = cert.keyType === "rsa" || cert.keyType === "rsa-pss" || cert.keyType === "dsa" ? MIN_RSA_BITS : cert.keyType === "ec" ? MIN_EC_BITS : 0;
  if (cert.keyBits !== null && cert.keyBits < minimum) found.push(finding("tls-small-key", where, `${subject} has a ${cert.keyBits}-bit ${cert.keyType.toUpperCase()} key (minimum ${minimum})`));
  if (!cert.selfSigned && cert.signatureAlgorithm && WEAK_SIGNATURE_ALGORITHMS.has(cert.signatureAlgorithm))
    found.push(finding("tls-weak-signature", where, `${subject} is signed with ${cert.signatureAlgorithm}`));
  return found;
}

/** Findings for one port of one host. */
export function findingsForPort(address: string, result: PortResult, now: Date): Finding[] {
  const service = result.service;
  if (!service) return [];
  const where = { address, port: result.port, transport: result.transport };
  const endpoint = `${address.includes(":") ? `[${address}]` : address}:${result.port}/${result.transport}`;
  const banner = service.banner ? ` (greeting: "${service.banner}")` : "";
  const found: Finding[] = [];
  switch (service.name) {
    case "telnet": {
      const options = service.telnet?.options.length ? `; negotiated ${service.telnet.options.join(", ")}` : "";
      found.push(finding("telnet-plaintext", where, `Telnet on ${endpoint}${banner}${options}`));
      break;
    }
    case "ftp":
      found.push(finding("ftp-plaintext", where, `FTP on ${endpoint}${banner}`));
      break;
    case "ssh":
      if (service.banner && /^SSH-1\.(?!99)/.test(service.banner)) found.push(finding("ssh-protocol-1", where, `SSH on ${endpoint} announces ${service.banner}`));
      break;
    case "http":
      if (!service.overTls && service.http?.revocationOnly) {
        found.push(finding("http-pki-revocation", where, `HTTP on ${endpoint} serves only certificate status (a CRL at /crl, answer ${service.http.status} at /)`));
      } else if (!service.overTls) {
        found.push(finding("http-plaintext", where, `HTTP on ${endpoint} answered HEAD / with ${service.http?.status}${service.http?.server ? ` (Server: ${service.http.server})` : ""}`));
        if (service.http?.basicRealm !== undefined)
          found.push(finding("http-basic-plaintext", where, `HTTP on ${endpoint} asks for Basic credentials (realm "${service.http.basicRealm}") without TLS`));
      }
      break;
    case "mqtt": {
      const mqtt = service.mqtt;
      if (!service.overTls) found.push(finding("mqtt-plaintext", where, `MQTT on ${endpoint} answered CONNECT without TLS (${describeConnack(mqtt?.anonymousReturnCode ?? -1)})`));
      if (mqtt?.anonymousReturnCode === 0) {
        found.push(finding("mqtt-anonymous", where, `CONNECT without user name or password on ${endpoint} was accepted (CONNACK 0)`));
        const seen = (topics: string[]) => (topics.length ? `; topics seen: ${topics.slice(0, 5).join(", ")}` : "");
        const [sys, other] = [mqtt.topicsSeen.filter((t) => t.startsWith("$")), mqtt.topicsSeen.filter((t) => !t.startsWith("$"))];
        if (mqtt.readAll) found.push(finding("mqtt-anonymous-read-all", where, `SUBSCRIBE '#' was granted to an anonymous client on ${endpoint}${seen(other)}`));
        if (mqtt.readSys) found.push(finding("mqtt-anonymous-read-sys", where, `SUBSCRIBE '$SYS/#' was granted to an anonymous client on ${endpoint}${seen(sys)}`));
      }
      break;
    }
    case "coap":
      found.push(
        finding(
          "coap-no-dtls",
          where,
          `CoAP on ${endpoint} answered GET /.well-known/core with ${service.coap?.responseCode} in clear text${service.coap?.resources ? `: ${service.coap.resources}` : ""}`,
        ),
      );
      break;
    case "bacnet":
      found.push(finding("bacnet-exposed", where, `BACnet/IP on ${endpoint} answered a Who-Is${banner}`));
      break;
    default:
      break;
  }
  const credentials = service.credentials;
  if (credentials?.acceptsAnything)
    found.push(finding("auth-accepts-any-credentials", where, `${credentials.service.toUpperCase()} on ${endpoint} accepted a random user name and password`));
  else if (credentials?.accepted) {
    const id = credentials.service === "telnet" ? "default-credentials-telnet" : credentials.service === "http" ? "default-credentials-http" : "default-credentials-mqtt";
    const { username, password } = credentials.accepted;
    found.push(finding(id, where, `${credentials.service.toUpperCase()} on ${endpoint} accepted the default login ${username}/${password || "(empty password)"} (attempt ${credentials.attempts})`));
  }
  if (service.tls) found.push(...tlsFindings(service.tls, where, now));
  return found;
}
