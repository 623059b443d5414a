/**
 * The encoding pieces every MQTT packet is built from (OASIS MQTT 3.1.1 §1.5, §2.2; MQTT 5 §1.5): the
 * Remaining Length, length-prefixed UTF-8 strings, and a packet's fixed header around its body. The
 * scanner's probes and the bench's load generator both build packets with these.
 */

/** Remaining Length: a variable byte integer, 1-4 bytes of 7 bits each. */
export function remainingLength(length: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = length % 128;
    length = Math.floor(length / 128);
    if (length > 0) byte |= 0x80;
    bytes.push(byte);
  } while (length > 0);
  return Buffer.from(bytes);
}

/** A UTF-8 string with its two-byte big-endian length in front. */
export function mqttString(text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  const out = Buffer.allocUnsafe(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

/** The fixed header (first byte and Remaining Length) followed by the body parts. */
export function mqttPacket(firstByte: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([firstByte]), remainingLength(body.length), body]);
}
