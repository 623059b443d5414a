/**
 * The few MQTT 3.1.1 packets the scanner speaks (OASIS MQTT 3.1.1 §3): CONNECT, SUBSCRIBE and
 * DISCONNECT out; CONNACK, SUBACK and PUBLISH in. Decoding is strict: a malformed remaining length
 * or an oversized packet ends the conversation instead of being guessed at.
 */
import { mqttPacket, mqttString } from "../lib/mqtt-frame.js";

export const MQTT_CONNACK = 2;
export const MQTT_PUBLISH = 3;
export const MQTT_SUBACK = 9;

/** The largest packet the scanner will wait for; anything bigger is not worth buffering. */
const MAX_PACKET = 64 * 1024;

export interface ConnectFields {
  clientId: string;
  username?: string;
  password?: string;
  keepAliveSeconds?: number;
}

/** CONNECT with a clean session (§3.1); user name and password flags only when given. */
export function encodeConnect(fields: ConnectFields): Buffer {
  let flags = 0x02;
  if (fields.username !== undefined) flags |= 0x80;
  if (fields.password !== undefined) flags |= 0x40;
  const keepAlive = Buffer.alloc(2);
  keepAlive.writeUInt16BE(fields.keepAliveSeconds ?? 30);
  const parts = [mqttString("MQTT"), Buffer.from([4, flags]), keepAlive, mqttString(fields.clientId)];
  if (fields.username !== undefined) parts.push(mqttString(fields.username));
  if (fields.password !== undefined) parts.push(mqttString(fields.password));
  return mqttPacket(0x10, Buffer.concat(parts));
}

/** SUBSCRIBE at QoS 0 (§3.8; the fixed-header flags must be 0b0010). */
export function encodeSubscribe(packetId: number, filters: readonly string[]): Buffer {
  const id = Buffer.alloc(2);
  id.writeUInt16BE(packetId);
  return mqttPacket(0x82, Buffer.concat([id, ...filters.map((f) => Buffer.concat([mqttString(f), Buffer.from([0])]))]));
}

export function encodeDisconnect(): Buffer {
  return Buffer.from([0xe0, 0x00]);
}

export interface MqttPacket {
  type: number;
  flags: number;
  body: Buffer;
  /** Bytes the whole packet took in the buffer. */
  size: number;
}

/** Decodes the first packet of `buffer`: null while incomplete, "malformed" when it cannot be MQTT. */
export function decodePacket(buffer: Buffer): MqttPacket | null | "malformed" {
  if (buffer.length < 2) return null;
  let length = 0;
  let multiplier = 1;
  let offset = 1;
  for (;;) {
    if (offset >= buffer.length) return null;
    if (offset > 4) return "malformed";
    const byte = buffer[offset++]!;
    length += (byte & 0x7f) * multiplier;
    multiplier *= 128;
    if ((byte & 0x80) === 0) break;
  }
  if (length > MAX_PACKET) return "malformed";
  if (buffer.length < offset + length) return null;
  return { type: buffer[0]! >> 4, flags: buffer[0]! & 0x0f, body: buffer.subarray(offset, offset + length), size: offset + length };
}

/** CONNACK return code (§3.2.2.3), or null when the packet is not a well-formed CONNACK. */
export function connackReturnCode(packet: MqttPacket): number | null {
  if (packet.type !== MQTT_CONNACK || packet.flags !== 0 || packet.body.length !== 2) return null;
  return packet.body[1]!;
}

/** The topic of a PUBLISH (§3.3.2.1). */
export function publishTopic(packet: MqttPacket): string | null {
  if (packet.type !== MQTT_PUBLISH || packet.body.length < 2) return null;
  const length = packet.body.readUInt16BE(0);
  if (packet.body.length < 2 + length) return null;
  return packet.body.subarray(2, 2 + length).toString("utf8");
}

/** SUBACK return codes per filter for `packetId` (§3.9.3), or null when it is not that SUBACK. */
export function subackCodes(packet: MqttPacket, packetId: number): number[] | null {
  if (packet.type !== MQTT_SUBACK || packet.body.length < 3 || packet.body.readUInt16BE(0) !== packetId) return null;
  return [...packet.body.subarray(2)];
}

/** Human text for a CONNACK return code. */
export function describeConnack(code: number): string {
  return (
    ["accepted", "unacceptable protocol version", "identifier rejected", "server unavailable", "bad user name or password", "not authorised"][code] ??
    `return code ${code}`
  );
}
