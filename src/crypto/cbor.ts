import { decode, encode, type TagDecoder } from "cborg";
import { MoatError, type ErrorCode } from "../errors.js";

/** A tagged CBOR item (RFC 8949 §3.4), e.g. COSE_Sign1 is tag 18 around a 4-element array. */
export class CborTag {
  constructor(
    readonly value: unknown,
    readonly tag: number,
  ) {}
}

/**
 * CBOR with one fixed configuration for everything Moat signs or MACs: maps stay `Map`s (COSE
 * labels are integers), byte strings are untagged, lengths are minimal (RFC 8949 §4.2.1 core
 * deterministic encoding, keys kept in the order the caller gives). cborg is pure JavaScript:
 * nothing native to build or download.
 */
const ENCODE_OPTIONS = {
  // Keep the caller's key order (a stable sort with an all-equal comparator changes nothing).
  mapSorter: () => 0,
  typeEncoders: {
    Object: (value: unknown) => {
      if (value instanceof CborTag) throw new TypeError("a CBOR tag may only wrap the top-level item");
      return null;
    },
  },
};

/** The COSE message tags (RFC 9052 §2): tag number → wrapper. Other tags are refused. */
const COSE_TAGS = [16, 17, 18, 96, 97, 98];
const tagDecoders: TagDecoder[] = [];
for (const tag of COSE_TAGS) tagDecoders[tag] = (inner: unknown) => new CborTag(inner, tag);

const DECODE_OPTIONS = { useMaps: true, strict: true, rejectDuplicateMapKeys: true, allowIndefinite: false, tags: tagDecoders };

/** cborg decodes byte strings as Uint8Array; Moat's code works with Buffers (views, no copy). */
function withBuffers(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value)) return value.map(withBuffers);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [withBuffers(k), withBuffers(v)]));
  if (value instanceof CborTag) return new CborTag(withBuffers(value.value), value.tag);
  return value;
}

/** Encodes a value; integers above 2^53 must be passed as bigint so they stay integers. */
export function encodeCbor(value: unknown): Buffer {
  if (value instanceof CborTag) return Buffer.concat([head(6, value.tag), encodeCbor(value.value)]);
  const bytes = encode(value, ENCODE_OPTIONS);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decodes one CBOR item and insists that it is in preferred serialization: re-encoding must give
 * the same bytes. That rejects duplicate map keys (RFC 9052 §3 says they MUST be rejected),
 * indefinite lengths, non-minimal integers and trailing bytes in one check.
 */
export function decodeCanonicalCbor(bytes: Uint8Array, what: string, code: ErrorCode): unknown {
  let value: unknown;
  try {
    value = withBuffers(decode(bytes, DECODE_OPTIONS));
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
