/**
 * Mosquitto 2.0's log lines (log_timestamp false), read as facts about the data plane: connections,
 * sessions and TLS failures. A line that is none of these is just logged. Mosquitto 2.0 reports refused
 * publishes and subscriptions only at log_type debug, which writes a line per packet; Moat does not
 * turn that on (docs/broker.md, "Events per data plane").
 */

export type LogFact =
  /** A TCP/unix connection arrived; TLS and CONNECT come next. */
  | { kind: "connection"; address: string; port: number }
  | { kind: "connected"; address: string; port: number; clientId: string; protocol: number; username: string | null }
  | { kind: "disconnected"; clientId: string; reason: string }
  /** A TLS handshake failed (OpenSSL's reason, e.g. "certificate revoked", "certificate verify failed"). */
  | { kind: "tls_failed"; reason: string }
  | { kind: "reloading" }
  | { kind: "other" };

const CONNECTION = /^New connection from (.+):(\d+) on port \d+\.$/;
const CONNECTED = /^New client connected from (.+):(\d+) as (\S+) \(p(\d+), c\d, k\d+(?:, u'(.*)')?\)\.$/;
const DISCONNECTS: Array<[RegExp, string]> = [
  [/^Client (\S+) disconnected\.$/, "client"],
  [/^Client (\S+) closed its connection\.$/, "client"],
  [/^Client (\S+) has exceeded timeout, disconnecting\.$/, "keepalive"],
  [/^Socket error on client (\S+), disconnecting\.$/, "connection_lost"],
  [/^Client (\S+) been disconnected by administrative action\.$/, "administrative"],
  [/^Client (\S+) disconnected by administrative action\.$/, "administrative"],
  [/^Client (\S+) disconnected, not authori[sz]ed\.$/, "not_authorised"],
  [/^Client (\S+) disconnected due to protocol error\.$/, "protocol_error"],
  [/^Client (\S+) disconnected due to malformed packet\.$/, "malformed_packet"],
  [/^Client (\S+) already connected, closing old connection\.$/, "taken_over"],
  [/^Client (\S+) disconnected: (.+?)\.?$/, "error"],
  [/^Bad socket read\/write on client (\S+): (.+)$/, "error"],
];
const OPENSSL = /^OpenSSL Error\[\d+\]: error:[0-9A-Fa-f]+:[^:]*:[^:]*:(.+)$/;

export function parseLogLine(line: string): LogFact {
  let m = CONNECTED.exec(line);
  if (m) return { kind: "connected", address: m[1]!, port: Number(m[2]), clientId: m[3]!, protocol: Number(m[4]), username: m[5] ?? null };
  m = CONNECTION.exec(line);
  if (m) return { kind: "connection", address: m[1]!, port: Number(m[2]) };
  for (const [pattern, reason] of DISCONNECTS) {
    m = pattern.exec(line);
    if (m) return { kind: "disconnected", clientId: m[1]!, reason: reason === "error" && m[2] ? `error: ${m[2]}` : reason };
  }
  m = OPENSSL.exec(line);
  if (m) return { kind: "tls_failed", reason: m[1]!.trim() };
  if (line === "Reloading config." || line.startsWith("Reloading config")) return { kind: "reloading" };
  return { kind: "other" };
}

/** MQTT protocol level in the connect line: 3 = 3.1, 4 = 3.1.1, 5 = 5.0. */
export function mqttVersionOf(protocol: number): string {
  return protocol === 5 ? "5" : protocol === 4 ? "3.1.1" : protocol === 3 ? "3.1" : String(protocol);
}
