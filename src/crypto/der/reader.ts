/**
 * A strict, bounds-checked DER reader (ITU-T X.690 §10). It only walks TLVs; it never allocates
 * copies, never recurses on its own and rejects indefinite or non-minimal lengths, so hostile
 * input fails with `DerError` instead of reading out of bounds.
 */

export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

/** One element: its tag octet, where its content lies, and the whole encoding. */
export interface Tlv {
  tag: number;
  /** The whole TLV (header + content), a view into the input. */
  encoded: Buffer;
  /** The content octets, a view into the input. */
  content: Buffer;
}

/** Reads one TLV at `offset` of `input`, within `end`. */
export function readTlv(input: Buffer, offset = 0, end = input.length): Tlv {
  if (offset + 2 > end) throw new DerError("truncated: no room for a tag and length");
  const tag = input[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError("multi-octet tags are not used here");
  let length = input[offset + 1]!;
  let headerLength = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0) throw new DerError("indefinite length is not DER");
    if (count > 4) throw new DerError("length too large");
    if (offset + 2 + count > end) throw new DerError("truncated length");
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + input[offset + 2 + i]!;
    if (input[offset + 2] === 0 || length < 0x80) throw new DerError("non-minimal length is not DER");
    headerLength += count;
  }
  const contentStart = offset + headerLength;
  if (contentStart + length > end) throw new DerError("truncated: content runs past the end");
  return {
    tag,
    encoded: input.subarray(offset, contentStart + length),
    content: input.subarray(contentStart, contentStart + length),
  };
}

/** Reads exactly one TLV that spans the whole input (no trailing bytes). */
export function readSingle(input: Buffer, expectedTag?: number): Tlv {
  const element = readTlv(input);
  if (element.encoded.length !== input.length) throw new DerError("trailing bytes after the outer element");
  if (expectedTag !== undefined && element.tag !== expectedTag) throw new DerError(`expected tag 0x${expectedTag.toString(16)}, found 0x${element.tag.toString(16)}`);
  return element;
}

/** The children of a constructed element, in order. */
export function children(parent: Tlv | Buffer): Tlv[] {
  const content = Buffer.isBuffer(parent) ? parent : parent.content;
  const out: Tlv[] = [];
  let offset = 0;
  while (offset < content.length) {
    const child = readTlv(content, offset);
    out.push(child);
    offset += child.encoded.length;
    if (out.length > 10_000) throw new DerError("too many elements");
  }
  return out;
}

/** Asserts the tag of `element` and returns it. */
export function expectTag(element: Tlv | undefined, tag: number, what: string): Tlv {
  if (!element) throw new DerError(`missing ${what}`);
  if (element.tag !== tag) throw new DerError(`${what}: expected tag 0x${tag.toString(16)}, found 0x${element.tag.toString(16)}`);
  return element;
}

/** Decodes an OBJECT IDENTIFIER's content into dotted form. */
export function decodeOid(element: Tlv): string {
  if (element.tag !== 0x06) throw new DerError("expected an OBJECT IDENTIFIER");
  const bytes = element.content;
  if (bytes.length === 0 || bytes.length > 64) throw new DerError("bad OBJECT IDENTIFIER length");
  const arcs: number[] = [];
  let value = 0;
  let started = false;
  for (const byte of bytes) {
    if (!started && byte === 0x80) throw new DerError("non-minimal OID arc");
    started = (byte & 0x80) !== 0;
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 256) throw new DerError("OID arc too large");
    if (!started) {
      arcs.push(value);
      value = 0;
    }
  }
  if (started) throw new DerError("truncated OID arc");
  const first = arcs[0]!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join(".");
}

/** The magnitude bytes of a non-negative INTEGER (leading sign zero removed). */
export function decodeUnsignedInteger(element: Tlv): Buffer {
  if (element.tag !== 0x02) throw new DerError("expected an INTEGER");
  const bytes = element.content;
  if (bytes.length === 0) throw new DerError("empty INTEGER");
  if (bytes.length > 1 && ((bytes[0] === 0 && (bytes[1]! & 0x80) === 0) || (bytes[0] === 0xff && (bytes[1]! & 0x80) !== 0)))
    throw new DerError("non-minimal INTEGER");
  if ((bytes[0]! & 0x80) !== 0) throw new DerError("negative INTEGER");
  return bytes[0] === 0 && bytes.length > 1 ? bytes.subarray(1) : bytes;
}

/** A small INTEGER as a JS number. */
export function decodeSmallInteger(element: Tlv): number {
  const magnitude = decodeUnsignedInteger(element);
  if (magnitude.length > 6) throw new DerError("INTEGER too large");
  return magnitude.reduce((n, byte) => n * 256 + byte, 0);
}

/** The bits of a BIT STRING with the unused-bits octet checked. */
export function decodeBitString(element: Tlv): { bytes: Buffer; unusedBits: number } {
  if (element.tag !== 0x03) throw new DerError("expected a BIT STRING");
  if (element.content.length === 0) throw new DerError("empty BIT STRING");
  const unusedBits = element.content[0]!;
  if (unusedBits > 7 || (unusedBits > 0 && element.content.length === 1)) throw new DerError("bad BIT STRING padding");
  return { bytes: element.content.subarray(1), unusedBits };
}

/** Decodes UTCTime or GeneralizedTime in the forms RFC 5280 §4.1.2.5 allows. */
export function decodeTime(element: Tlv): Date {
  const text = element.content.toString("ascii");
  let match: RegExpExecArray | null;
  if (element.tag === 0x17 && (match = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text))) {
    const yy = Number(match[1]);
    return new Date(Date.UTC(yy >= 50 ? 1900 + yy : 2000 + yy, Number(match[2]) - 1, Number(match[3]), Number(match[4]), Number(match[5]), Number(match[6])));
  }
  if (element.tag === 0x18 && (match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/.exec(text))) {
    return new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, Number(match[3]), Number(match[4]), Number(match[5]), Number(match[6])));
  }
  throw new DerError("bad time encoding");
}
