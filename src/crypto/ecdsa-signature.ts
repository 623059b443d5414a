import { MoatError } from "../errors.js";

/**
 * ECDSA signature encodings. PKCS#11 CKM_ECDSA and COSE (RFC 9053 §2.1) use r || s of fixed width;
 * X.509, CRLs and OCSP use DER `Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (RFC 3279 §2.2.3).
 */
export function ecdsaRawToDer(raw: Uint8Array): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0 || raw.length > 132) throw new MoatError("CRYPTO_KEY_INVALID", `an r||s ECDSA signature has even length up to 132 bytes, got ${raw.length}`);
  const half = raw.length / 2;
  const r = derInteger(raw.subarray(0, half));
  const s = derInteger(raw.subarray(half));
  return Buffer.concat([Buffer.from([0x30]), derLength(r.length + s.length), r, s]);
}

/** DER Ecdsa-Sig-Value → r || s, each padded to `size` bytes (32 for P-256). */
export function ecdsaDerToRaw(der: Uint8Array, size: number): Buffer {
  const fail = () => new MoatError("CRYPTO_KEY_INVALID", "not a DER ECDSA signature");
  const buf = Buffer.from(der);
  let at = 0;
  const readLength = (): number => {
    const first = buf[at++];
    if (first === undefined) throw fail();
    if (first < 0x80) return first;
    if (first !== 0x81) throw fail();
    const value = buf[at++];
    if (value === undefined || value < 0x80) throw fail();
    return value;
  };
  if (buf[at++] !== 0x30) throw fail();
  if (readLength() !== buf.length - at) throw fail();
  const parts: Buffer[] = [];
  for (let i = 0; i < 2; i++) {
    if (buf[at++] !== 0x02) throw fail();
    const length = readLength();
    if (length === 0 || at + length > buf.length) throw fail();
    let value = buf.subarray(at, at + length);
    at += length;
    while (value.length > 1 && value[0] === 0) value = value.subarray(1);
    if (value.length > size) throw fail();
    parts.push(Buffer.concat([Buffer.alloc(size - value.length), value]));
  }
  if (at !== buf.length) throw fail();
  return Buffer.concat(parts);
}

function derInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  let value = Buffer.from(bytes.subarray(start));
  if (value[0]! & 0x80) value = Buffer.concat([Buffer.from([0]), value]);
  return Buffer.concat([Buffer.from([0x02]), derLength(value.length), value]);
}

function derLength(length: number): Buffer {
  return length < 0x80 ? Buffer.from([length]) : Buffer.from([0x81, length]);
}
