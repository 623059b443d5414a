/**
 * The few MQTT control packets a load generator needs (MQTT 3.1.1 §3 and MQTT 5.0 §3), encoded and
 * decoded by hand. A general client library spends more CPU per message than a C broker spends per
 * delivery, so it, not the broker, would set the measured rate; raw frames keep the generator cheap.
 * Only what the benches send is encoded: no wills, no passwords, no properties (MQTT 5 property
 * lengths are always zero), and a decoder that splits the byte stream into packets without
 * interpreting more than the type, the flags and, for PUBLISH, the packet identifier.
 */
import { mqttPacket, mqttString, remainingLength } from "../../src/lib/mqtt-frame.js";

export type ProtocolVersion = 4 | 5;

export const PACKET = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  SUBSCRIBE: 8,
  SUBACK: 9,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
} as const;

const NO_PROPERTIES = Buffer.from([0]);

export function connect(options: { clientId: string; version: ProtocolVersion; keepaliveSeconds?: number; cleanStart?: boolean; username?: string }): Buffer {
  const flags = (options.cleanStart === false ? 0 : 0x02) | (options.username !== undefined ? 0x80 : 0);
  const header = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, options.version, flags, 0, 0]);
  header.writeUInt16BE(options.keepaliveSeconds ?? 0, 8);
  const parts: Buffer[] = [header];
  if (options.version === 5) parts.push(NO_PROPERTIES);
  parts.push(mqttString(options.clientId));
  if (options.username !== undefined) parts.push(mqttString(options.username));
  return mqttPacket(0x10, ...parts);
}

/**
 * A PUBLISH template for one topic: the bytes before the packet identifier and after it, so a
 * publisher stamps a new identifier into a copy instead of encoding the topic for every message.
 */
export class PublishTemplate {
  private readonly bytes: Buffer;
  private readonly idOffset: number;

  constructor(topic: string, payload: Buffer, readonly qos: 0 | 1, version: ProtocolVersion) {
    const topicBytes = mqttString(topic);
    const id = qos > 0 ? Buffer.alloc(2) : Buffer.alloc(0);
    const properties = version === 5 ? NO_PROPERTIES : Buffer.alloc(0);
    const body = Buffer.concat([topicBytes, id, properties, payload]);
    const head = Buffer.concat([Buffer.from([0x30 | (qos << 1)]), remainingLength(body.length)]);
    this.bytes = Buffer.concat([head, body]);
    this.idOffset = head.length + topicBytes.length;
  }

  get length(): number {
    return this.bytes.length;
  }

  /** Writes one PUBLISH with `packetId` (ignored at QoS 0) into `target` at `offset`; returns the end. */
  writeInto(target: Buffer, offset: number, packetId: number): number {
    this.bytes.copy(target, offset);
    if (this.qos > 0) target.writeUInt16BE(packetId, offset + this.idOffset);
    return offset + this.bytes.length;
  }
}

/** PUBACK with reason Success: MQTT 5 §3.4.2.1 lets the reason code and properties be left out then. */
export function writePuback(target: Buffer, offset: number, packetId: number): number {
  target[offset] = 0x40;
  target[offset + 1] = 2;
  target.writeUInt16BE(packetId, offset + 2);
  return offset + 4;
}

export function subscribe(packetId: number, filter: string, qos: 0 | 1, version: ProtocolVersion): Buffer {
  const id = Buffer.alloc(2);
  id.writeUInt16BE(packetId, 0);
  return mqttPacket(0x82, id, ...(version === 5 ? [NO_PROPERTIES] : []), mqttString(filter), Buffer.from([qos]));
}

export const PINGREQ = Buffer.from([0xc0, 0]);
export const DISCONNECT = Buffer.from([0xe0, 0]);

export interface Packet {
  type: number;
  flags: number;
  /** The variable header and payload (a view into the received bytes: copy it to keep it). */
  body: Buffer;
}

/** CONNACK's return code (3.1.1) or reason code (5); 0 is success in both. */
export function connackCode(body: Buffer): number {
  return body[1] ?? 255;
}

/** The packet identifier of a QoS 1/2 PUBLISH (after the topic name), or 0 at QoS 0. */
export function publishPacketId(p: Packet): number {
  if (((p.flags >> 1) & 3) === 0) return 0;
  const topicLength = p.body.readUInt16BE(0);
  return p.body.readUInt16BE(2 + topicLength);
}

/** The topic name of a PUBLISH. */
export function publishTopic(p: Packet): string {
  const length = p.body.readUInt16BE(0);
  return p.body.toString("utf8", 2, 2 + length);
}

/** SUBACK: the granted QoS or failure code (0x80 and above) of the first filter. */
export function subackCode(body: Buffer, version: ProtocolVersion): number {
  if (version === 4) return body[2] ?? 255;
  let offset = 2;
  let propertiesLength = 0;
  let shift = 0;
  for (;;) {
    const byte = body[offset++] ?? 0;
    propertiesLength |= (byte & 0x7f) << shift;
    shift += 7;
    if ((byte & 0x80) === 0) break;
  }
  return body[offset + propertiesLength] ?? 255;
}

/** Splits a TCP/TLS byte stream into MQTT packets, keeping a partial packet across chunks. */
export class PacketReader {
  private pending: Buffer | null = null;

  /** Feeds one chunk; calls `onPacket` for each complete packet in it. */
  push(chunk: Buffer, onPacket: (p: Packet) => void): void {
    const data = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = null;
    let offset = 0;
    while (offset < data.length) {
      let length = 0;
      let multiplier = 1;
      let cursor = offset + 1;
      let complete = false;
      for (let i = 0; i < 4 && cursor < data.length; i++) {
        const byte = data[cursor++]!;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || cursor + length > data.length) break;
      const first = data[offset]!;
      onPacket({ type: first >> 4, flags: first & 0x0f, body: data.subarray(cursor, cursor + length) });
      offset = cursor + length;
    }
    if (offset < data.length) this.pending = Buffer.from(data.subarray(offset));
  }
}
