/**
 * A small DER encoder (ITU-T X.690 §10). Certificates, CRLs and OCSP responses are built from these
 * pieces directly, which is what makes issuance fast: no object model, just byte concatenation.
 */

const oidCache = new Map<string, Buffer>();

/** The length octets of X.690 §8.1.3 in definite, minimal form (§10.1). */
export function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV: `tag` (a single identifier octet), then the length, then `content`. */
export function tlv(tag: number, content: Buffer): Buffer {
  const length = content.length;
  if (length < 0x80) {
    const out = Buffer.allocUnsafe(2 + length);
    out[0] = tag;
    out[1] = length;
    content.copy(out, 2);
    return out;
  }
  return Buffer.concat([Buffer.from([tag]), encodeLength(length), content]);
}

export const sequence = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));

/** SET OF with the elements sorted by their encodings (X.690 §11.6). */
export const setOf = (...parts: Buffer[]): Buffer => tlv(0x31, Buffer.concat([...parts].sort(Buffer.compare)));

/** INTEGER from an unsigned big-endian magnitude (minimal two's complement, §8.3.2). */
export function unsignedInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  const trimmed = magnitude.subarray(start);
  const content = trimmed.length === 0 ? Buffer.from([0]) : (trimmed[0]! & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed;
  return tlv(0x02, content);
}

/** INTEGER from a small non-negative JS number. */
export function smallInteger(value: number): Buffer {
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`not a non-negative safe integer: ${value}`);
  const bytes: number[] = [];
  for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return unsignedInteger(Buffer.from(bytes.length === 0 ? [0] : bytes));
}

/** INTEGER from a non-negative bigint. */
export function bigInteger(value: bigint): Buffer {
  if (value < 0n) throw new TypeError("negative INTEGER not supported");
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  return unsignedInteger(Buffer.from(hex, "hex"));
}

/** OBJECT IDENTIFIER (§8.19), cached because the same few OIDs are encoded over and over. */
export function oid(dotted: string): Buffer {
  const cached = oidCache.get(dotted);
  if (cached) return cached;
  const arcs = dotted.split(".").map((arc) => {
    if (!/^\d+$/.test(arc)) throw new TypeError(`bad OID ${dotted}`);
    return BigInt(arc);
  });
  if (arcs.length < 2) throw new TypeError(`bad OID ${dotted}`);
  const values = [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)];
  const bytes: number[] = [];
  for (const value of values) {
    const groups: number[] = [];
    let n = value;
    do {
      groups.unshift(Number(n & 0x7fn));
      n >>= 7n;
    } while (n > 0n);
    for (let i = 0; i < groups.length - 1; i++) groups[i]! |= 0x80;
    bytes.push(...groups);
  }
  const encoded = tlv(0x06, Buffer.from(bytes));
  oidCache.set(dotted, encoded);
  return encoded;
}

export const nullValue = (): Buffer => Buffer.from([0x05, 0x00]);
export const boolean = (value: boolean): Buffer => Buffer.from([0x01, 0x01, value ? 0xff : 0x00]);
export const octetString = (content: Buffer): Buffer => tlv(0x04, content);
export const bitString = (content: Buffer, unusedBits = 0): Buffer => tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), content]));
export const utf8String = (value: string): Buffer => tlv(0x0c, Buffer.from(value, "utf8"));
export const ia5String = (value: string): Buffer => tlv(0x16, Buffer.from(value, "ascii"));
export const enumerated = (value: number): Buffer => tlv(0x0a, smallInteger(value).subarray(2));

/** [n] EXPLICIT: a constructed context-specific wrapper. */
export const explicit = (tagNumber: number, inner: Buffer): Buffer => tlv(0xa0 | tagNumber, inner);
/** [n] IMPLICIT on a primitive type: context-specific primitive tag over the raw content. */
export const implicitPrimitive = (tagNumber: number, content: Buffer): Buffer => tlv(0x80 | tagNumber, content);
/** [n] IMPLICIT on a constructed type (SEQUENCE/SET): context-specific constructed tag. */
export const implicitConstructed = (tagNumber: number, content: Buffer): Buffer => tlv(0xa0 | tagNumber, content);

const pad = (n: number, width = 2): string => String(n).padStart(width, "0");

/** UTCTime YYMMDDHHMMSSZ (RFC 5280 §4.1.2.5.1). Seconds precision; milliseconds dropped. */
export function utcTime(date: Date): Buffer {
  const text = `${pad(date.getUTCFullYear() % 100)}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}Z`;
  return tlv(0x17, Buffer.from(text, "ascii"));
}

/** GeneralizedTime YYYYMMDDHHMMSSZ without fractions (RFC 5280 §4.1.2.5.2). */
export function generalizedTime(date: Date): Buffer {
  const text = `${pad(date.getUTCFullYear(), 4)}${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}Z`;
  return tlv(0x18, Buffer.from(text, "ascii"));
}

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
export function x509Time(date: Date): Buffer {
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050 ? utcTime(date) : generalizedTime(date);
}
