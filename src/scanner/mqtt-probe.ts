/** MQTT probes: is this MQTT, does it let anonymous clients in, and what may they read. */
import { randomBytes } from "node:crypto";
import { connackReturnCode, decodePacket, encodeConnect, encodeDisconnect, encodeSubscribe, publishTopic, subackCodes, type ConnectFields, type MqttPacket } from "./mqtt-packets.js";
import { withSession, type Endpoint, type ProbeContext } from "./probe-context.js";
import type { SocketSession } from "./socket-session.js";

function scannerClientId(): string {
  return `moat-scan-${randomBytes(6).toString("hex")}`;
}

/** Reads the next packet, or null on timeout, close or garbage. */
async function nextPacket(session: SocketSession, timeoutMs: number): Promise<MqttPacket | null> {
  let decoded: ReturnType<typeof decodePacket> = null;
  await session.waitFor((buffer) => (decoded = decodePacket(buffer)) !== null, timeoutMs);
  if (decoded === null || decoded === "malformed") return null;
  const packet: MqttPacket = decoded;
  session.consume(packet.size);
  return packet;
}

async function connect(session: SocketSession, fields: ConnectFields, timeoutMs: number): Promise<number | null> {
  session.write(encodeConnect(fields));
  const packet = await nextPacket(session, timeoutMs);
  return packet ? connackReturnCode(packet) : null;
}

/** Sends CONNECT and returns the CONNACK return code, or null when the service does not answer as MQTT. */
export async function mqttConnectCode(ctx: ProbeContext, endpoint: Endpoint, credentials?: { username: string; password: string }): Promise<number | null> {
  return withSession(ctx, endpoint, async (session) => {
    const code = await connect(session, { clientId: scannerClientId(), ...credentials }, ctx.readTimeoutMs);
    if (code === 0) session.write(encodeDisconnect());
    return code;
  });
}

export interface MqttAnonymousAccess {
  /** CONNACK return code for a CONNECT without user name and password. */
  returnCode: number;
  /** Whether the broker granted a subscription to `#` and to `$SYS/#` (SUBACK not 0x80). */
  readAll: boolean | null;
  readSys: boolean | null;
  /** Topic names of messages received during the short listen (never payloads). */
  topicsSeen: string[];
}

/**
 * Connects without credentials; when accepted, subscribes to `#` and `$SYS/#` and listens briefly.
 * `#` does not match `$`-topics ([MQTT-4.7.2-1]), so the two filters answer different questions.
 */
export async function mqttAnonymousAccess(ctx: ProbeContext, endpoint: Endpoint, listenMs: number): Promise<MqttAnonymousAccess | null> {
  return withSession(ctx, endpoint, async (session) => {
    const returnCode = await connect(session, { clientId: scannerClientId() }, ctx.readTimeoutMs);
    if (returnCode === null) return null;
    const access: MqttAnonymousAccess = { returnCode, readAll: null, readSys: null, topicsSeen: [] };
    if (returnCode !== 0) return access;
    const packetId = 1;
    session.write(encodeSubscribe(packetId, ["#", "$SYS/#"]));
    const topics = new Set<string>();
    let granted: number[] | null = null;
    // Wait for the SUBACK (retained messages may come first), then listen for `listenMs` more.
    let deadline = Date.now() + ctx.readTimeoutMs;
    while (Date.now() < deadline) {
      const packet = await nextPacket(session, Math.max(1, deadline - Date.now()));
      if (!packet) break;
      const topic = publishTopic(packet);
      if (topic !== null && topics.size < 20) topics.add(topic);
      if (!granted && (granted = subackCodes(packet, packetId))) deadline = Date.now() + listenMs;
    }
    if (granted) {
      // A broker may answer SUBACK with fewer codes than filters; treat missing as refused.
      access.readAll = granted[0] !== undefined && granted[0] < 0x80;
      access.readSys = granted[1] !== undefined && granted[1] < 0x80;
    }
    access.topicsSeen = [...topics];
    session.write(encodeDisconnect());
    return access;
  });
}
