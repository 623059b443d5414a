/**
 * Reads the outer signatureAlgorithm of a DER certificate (RFC 5280 §4.1.1.2), which
 * `crypto.X509Certificate` does not expose. Only the lengths needed to step over tbsCertificate
 * are decoded; anything unexpected yields null rather than a guess.
 */

const SIGNATURE_ALGORITHMS: Record<string, string> = {
  "1.2.840.113549.1.1.2": "md2WithRSAEncryption",
  "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
  "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
  "1.2.840.113549.1.1.10": "RSASSA-PSS",
  "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
  "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
  "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
  "1.2.840.10040.4.3": "dsa-with-SHA1",
  "1.2.840.10045.4.1": "ecdsa-with-SHA1",
  "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
  "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
  "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
  "1.3.101.112": "Ed25519",
  "1.3.101.113": "Ed448",
};

/** Algorithms whose hash no longer resists collisions (MD2, MD5, SHA-1). */
export const WEAK_SIGNATURE_ALGORITHMS = new Set(["md2WithRSAEncryption", "md5WithRSAEncryption", "sha1WithRSAEncryption", "dsa-with-SHA1", "ecdsa-with-SHA1"]);

interface Tlv {
  tag: number;
  start: number;
  end: number;
}

function readTlv(der: Buffer, offset: number): Tlv | null {
  if (offset + 2 > der.length) return null;
  const tag = der[offset]!;
  let length = der[offset + 1]!;
  let start = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || start + count > der.length) return null;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[start + i]!;
    start += count;
  }
  const end = start + length;
  return end > der.length ? null : { tag, start, end };
}

function decodeOid(bytes: Buffer): string | null {
  if (bytes.length === 0) return null;
  const first = bytes[0]!;
  const parts = [Math.min(2, Math.floor(first / 40)), first - 40 * Math.min(2, Math.floor(first / 40))];
  let value = 0;
  for (const byte of bytes.subarray(1)) {
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) return null;
    if ((byte & 0x80) === 0) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join(".");
}

/** The signature algorithm's name (or dotted OID when unknown); null when the DER is not a certificate. */
export function certificateSignatureAlgorithm(der: Buffer): string | null {
  const certificate = readTlv(der, 0);
  if (!certificate || certificate.tag !== 0x30) return null;
  const tbs = readTlv(der, certificate.start);
  if (!tbs || tbs.tag !== 0x30) return null;
  const algorithm = readTlv(der, tbs.end);
  if (!algorithm || algorithm.tag !== 0x30) return null;
  const oid = readTlv(der, algorithm.start);
  if (!oid || oid.tag !== 0x06) return null;
  const dotted = decodeOid(der.subarray(oid.start, oid.end));
  return dotted === null ? null : (SIGNATURE_ALGORITHMS[dotted] ?? dotted);
}
