/**
 * Bounds the size of MQTT packets before aedes buffers them. mqtt-packet collects a whole packet
 * before handing it over, so a peer announcing a 256 MB remaining length (even in CONNECT, before any
 * authentication) could make the broker hold that much per connection. This watcher reads each
 * chunk as aedes consumes it (a 'data' listener beside aedes' 'readable' one sees every chunk
 * `read()` returns) and follows the packet framing of MQTT 3.1.1 §2.2: a type byte, a remaining
 * length of at most four 7-bit groups [MQTT-2.2.3], then that many bytes.
 */
import type { Duplex } from "node:stream";

const enum Phase {
  Type,
  Length,
  Body,
}

/** Calls `onViolation` (once) and destroys the stream when a packet would exceed `maxPacketBytes`. */
export function guardPacketSize(stream: Duplex, maxPacketBytes: number, onViolation: (announced: number) => void): void {
  let phase = Phase.Type;
  let length = 0;
  let multiplier = 1;
  let lengthBytes = 0;
  let remaining = 0;
  let tripped = false;

  const violate = (announced: number) => {
    if (tripped) return;
    tripped = true;
    onViolation(announced);
    stream.destroy();
  };

  stream.on("data", (chunk: Buffer) => {
    if (tripped) return;
    let i = 0;
    while (i < chunk.length) {
      if (phase === Phase.Type) {
        i += 1;
        phase = Phase.Length;
        length = 0;
        multiplier = 1;
        lengthBytes = 0;
      } else if (phase === Phase.Length) {
        const byte = chunk[i++]!;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
        lengthBytes += 1;
        if ((byte & 0x80) === 0) {
          if (length > maxPacketBytes) return violate(length);
          remaining = length;
          phase = remaining > 0 ? Phase.Body : Phase.Type;
        } else if (lengthBytes === 4) {
          // A fifth length byte is malformed [MQTT-2.2.3]; treat it as oversized.
          return violate(Number.POSITIVE_INFINITY);
        }
      } else {
        const take = Math.min(remaining, chunk.length - i);
        i += take;
        remaining -= take;
        if (remaining === 0) phase = Phase.Type;
      }
    }
  });
}
