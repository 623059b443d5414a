/**
 * UDP probes. A UDP port only shows itself by answering, so each port gets a request in its own
 * protocol: CoAP GET /.well-known/core (RFC 7252 §3, RFC 6690 §4) by default, BACnet/IP Who-Is
 * (ASHRAE 135 Annex J) on 47808. An answer means open; an ICMP port-unreachable, which Node reports
 * as ECONNREFUSED on a connected socket, means closed; silence is "open|filtered" (nmap's word).
 */
import { randomBytes } from "node:crypto";
import type { ProbeContext } from "./probe-context.js";

export const COAP_PORT = 5683;
export const BACNET_PORT = 47808;

const COAP_VERSION = 1;
const COAP_CON = 0;
const COAP_GET = 0x01;
const OPTION_URI_PATH = 11;

export interface CoapMessage {
  type: number;
  /** Code as "c.dd", e.g. "2.05". */
  code: string;
  messageId: number;
  token: Buffer;
  payload: Buffer;
}

/** A confirmable GET with one Uri-Path option per segment (RFC 7252 §3.1 option encoding). */
export function encodeCoapGet(messageId: number, token: Buffer, path: readonly string[]): Buffer {
  const header = Buffer.from([(COAP_VERSION << 6) | (COAP_CON << 4) | token.length, COAP_GET, messageId >> 8, messageId & 0xff]);
  const options: Buffer[] = [];
  let previous = 0;
  for (const segment of path) {
    const value = Buffer.from(segment, "utf8");
    const delta = OPTION_URI_PATH - previous;
    previous = OPTION_URI_PATH;
    options.push(Buffer.concat([optionHeader(delta, value.length), value]));
  }
  return Buffer.concat([header, token, ...options]);
}

function optionHeader(delta: number, length: number): Buffer {
  const nibble = (n: number) => (n < 13 ? n : n < 269 ? 13 : 14);
  const extended = (n: number) => (n < 13 ? [] : n < 269 ? [n - 13] : [(n - 269) >> 8, (n - 269) & 0xff]);
  return Buffer.from([(nibble(delta) << 4) | nibble(length), ...extended(delta), ...extended(length)]);
}

/** Decodes a CoAP message; null when it is not well-formed CoAP version 1. */
export function decodeCoap(data: Buffer): CoapMessage | null {
  if (data.length < 4 || data[0]! >> 6 !== COAP_VERSION) return null;
  const tokenLength = data[0]! & 0x0f;
  if (tokenLength > 8 || data.length < 4 + tokenLength) return null;
  const code = data[1]!;
  let offset = 4 + tokenLength;
  // Step over options to the payload marker (0xFF).
  while (offset < data.length && data[offset] !== 0xff) {
    const byte = data[offset++]!;
    const deltaNibble = byte >> 4;
    const lengthNibble = byte & 0x0f;
    if (deltaNibble === 15 || lengthNibble === 15) return null; // reserved (§3.1)
    offset += deltaNibble === 13 ? 1 : deltaNibble === 14 ? 2 : 0;
    let length = lengthNibble;
    if (lengthNibble === 13) {
      if (offset + 1 > data.length) return null;
      length = data[offset]! + 13;
      offset += 1;
    } else if (lengthNibble === 14) {
      if (offset + 2 > data.length) return null;
      length = data.readUInt16BE(offset) + 269;
      offset += 2;
    }
    offset += length;
    if (offset > data.length) return null;
  }
  const payload = offset < data.length ? data.subarray(offset + 1) : Buffer.alloc(0);
  return {
    type: (data[0]! >> 4) & 0x03,
    code: `${code >> 5}.${String(code & 0x1f).padStart(2, "0")}`,
    messageId: data.readUInt16BE(2),
    token: data.subarray(4, 4 + tokenLength),
    payload,
  };
}

/** BACnet/IP Original-Unicast-NPDU carrying an unconfirmed Who-Is (BVLC 0x81 0x0A, NPDU version 1). */
export function encodeBacnetWhoIs(): Buffer {
  return Buffer.from([0x81, 0x0a, 0x00, 0x08, 0x01, 0x00, 0x10, 0x08]);
}

export interface UdpProbeResult {
  state: "open" | "closed" | "open|filtered";
  protocol?: "coap" | "bacnet";
  coap?: CoapMessage;
  /** First bytes of a non-CoAP answer. */
  reply?: Buffer;
}

/** Sends the port's probe (twice, as CoAP retransmits a CON once unanswered) and waits for an answer. */
export async function probeUdpPort(ctx: ProbeContext, address: string, family: 4 | 6, port: number): Promise<UdpProbeResult | null> {
  const result = await ctx.pacer.run(
    () =>
      new Promise<UdpProbeResult>((resolve) => {
        const socket = ctx.transport.createUdp(family === 6 ? "udp6" : "udp4");
        const messageId = randomBytes(2).readUInt16BE(0);
        const token = randomBytes(4);
        const bacnet = port === BACNET_PORT;
        const request = bacnet ? encodeBacnetWhoIs() : encodeCoapGet(messageId, token, [".well-known", "core"]);
        const timers: NodeJS.Timeout[] = [];
        let settled = false;
        const finish = (outcome: UdpProbeResult) => {
          if (settled) return;
          settled = true;
          timers.forEach(clearTimeout);
          ctx.signal.removeEventListener("abort", onAbort);
          socket.close();
          resolve(outcome);
        };
        const onAbort = () => finish({ state: "open|filtered" });
        ctx.signal.addEventListener("abort", onAbort, { once: true });
        socket.on("error", (error: NodeJS.ErrnoException) => finish({ state: error.code === "ECONNREFUSED" ? "closed" : "open|filtered" }));
        socket.on("message", (data: Buffer) => {
          if (bacnet) return finish(data[0] === 0x81 ? { state: "open", protocol: "bacnet", reply: data.subarray(0, 64) } : { state: "open", reply: data.subarray(0, 64) });
          const message = decodeCoap(data);
          // Only an answer to our message counts as CoAP (RFC 7252 §5.3.2 token matching).
          if (message && (message.messageId === messageId || message.token.equals(token))) finish({ state: "open", protocol: "coap", coap: message });
          else finish({ state: "open", reply: data.subarray(0, 64) });
        });
        socket.connect(port, address, () => {
          const send = () => socket.send(request, () => undefined);
          send();
          timers.push(setTimeout(send, ctx.readTimeoutMs / 2));
          timers.push(setTimeout(() => finish({ state: "open|filtered" }), ctx.readTimeoutMs));
        });
      }),
  );
  return result ?? null;
}
