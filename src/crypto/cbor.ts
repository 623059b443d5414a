import { Decoder, Encoder, Tag } from "cbor-x";
import { MoatError, type ErrorCode } from "../errors.js";

/**
 * CBOR with one fixed configuration for everything Moat signs or MACs: maps stay `Map`s (COSE
 * labels are integers), byte strings are untagged, lengths are minimal (RFC 8949 §4.2.1 core
 * deterministic encoding, keys kept in the order the caller gives).
 */
const encoder = new Encoder({
  mapsAsObjects: false,
  useRecords: false,
  tagUint8Array: false,
  variableMapSize: true,
  pack: false,
});

// 64-bit integers decode as bigint (the default), so they re-encode to the same bytes.
const decoder = new Decoder({ mapsAsObjects: false, useRecords: false });

export { Tag as CborTag };

/** Encodes a value; integers above 2^32 must be passed as bigint so they stay integers. */
export function encodeCbor(value: unknown): Buffer {
  // cbor-x returns a view into a buffer it reuses for the next encode: copy it out.
  return Buffer.from(encoder.encode(value));
}

/**
 * Decodes one CBOR item and insists that it is in preferred serialization: re-encoding must give
 * the same bytes. That rejects duplicate map keys (RFC 9052 §3 says they MUST be rejected),
 * indefinite lengths, non-minimal integers and trailing bytes in one check.
 */
export function decodeCanonicalCbor(bytes: Uint8Array, what: string, code: ErrorCode): unknown {
  let value: unknown;
  try {
    value = decoder.decode(bytes);
  } catch (error) {
    throw new MoatError(code, `${what} is not valid CBOR: ${(error as Error).message}`, { cause: error });
  }
  let again: Buffer;
  try {
    again = encodeCbor(value);
  } catch (error) {
    throw new MoatError(code, `${what} holds a CBOR item Moat does not accept`, { cause: error });
  }
  if (!again.equals(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)))
    throw new MoatError(code, `${what} is not in CBOR preferred serialization (duplicate map keys, indefinite or non-minimal lengths)`);
  return value;
}

/** The head of a CBOR item of major type `major` with argument `length` (RFC 8949 §3, preferred form). */
function head(major: number, length: number): Buffer {
  const type = major << 5;
  if (length < 24) return Buffer.from([type | length]);
  if (length < 0x100) return Buffer.from([type | 24, length]);
  if (length < 0x10000) return Buffer.from([type | 25, length >> 8, length & 0xff]);
  const out = Buffer.alloc(5);
  out[0] = type | 26;
  out.writeUInt32BE(length, 1);
  return out;
}

/**
 * Encodes `[text, bstr, bstr, ...]`, the shape of COSE's Enc_structure and Sig_structure
 * (RFC 9052 §4.4, §5.3), without a general encoder: these are built for every message.
 * The bytes are identical to `encodeCbor([text, ...bstrs])`.
 */
export function encodeContextStructure(context: string, ...byteStrings: Uint8Array[]): Buffer {
  const text = Buffer.from(context, "utf8");
  const parts: Uint8Array[] = [head(4, 1 + byteStrings.length), head(3, text.length), text];
  for (const bytes of byteStrings) parts.push(head(2, bytes.length), bytes);
  return Buffer.concat(parts);
}
