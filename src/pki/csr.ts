import { createPublicKey, verify, type KeyObject } from "node:crypto";
import { MoatError } from "../errors.js";
import { children, decodeBitString, decodeOid, decodeSmallInteger, DerError, expectTag, readSingle, type Tlv } from "../crypto/index.js";
import { decodeName, type NameAttribute } from "./name.js";
import { OID } from "./oids.js";

/** RFC 7030 does not bound a CSR; Moat does, so one request cannot tie up the parser. */
export const MAX_CSR_BYTES = 64 * 1024;
const MIN_RSA_BITS = 2048;
const MAX_RSA_BITS = 8192;

/** The kinds of subject key a device may present. */
export type CsrKeyKind = "ec-p256" | "ec-p384" | "rsa" | "ed25519";

/** A PKCS#10 request that parsed strictly and whose signature verified (proof of possession). */
export interface VerifiedCsr {
  der: Buffer;
  subject: NameAttribute[];
  /** The SPKI re-exported from the parsed key: canonical DER, never the request's bytes. */
  spkiDer: Buffer;
  publicKey: KeyObject;
  keyKind: CsrKeyKind;
  /** RSA modulus size, or the curve size. */
  keyBits: number;
}

/** Signature algorithms accepted on a CSR and the digest node:crypto uses for each (null = Ed25519). */
const CSR_SIGNATURE_ALGORITHMS: Record<string, { digest: string | null; key: "ec" | "rsa" | "ed25519" }> = {
  [OID.ecdsaWithSha256]: { digest: "sha256", key: "ec" },
  [OID.ecdsaWithSha384]: { digest: "sha384", key: "ec" },
  [OID.ecdsaWithSha512]: { digest: "sha512", key: "ec" },
  [OID.sha256WithRsa]: { digest: "sha256", key: "rsa" },
  [OID.sha384WithRsa]: { digest: "sha384", key: "rsa" },
  [OID.sha512WithRsa]: { digest: "sha512", key: "rsa" },
  [OID.ed25519]: { digest: null, key: "ed25519" },
};

const malformed = (message: string, cause?: unknown): MoatError => new MoatError("PKI_CSR_MALFORMED", `CSR is malformed: ${message}`, { cause });

/** Accepts PEM (`CERTIFICATE REQUEST` or `NEW CERTIFICATE REQUEST`) or DER, as text or bytes. */
export function decodeCsrInput(input: string | Buffer): Buffer {
  const size = typeof input === "string" ? Buffer.byteLength(input) : input.length;
  if (size > MAX_CSR_BYTES) throw new MoatError("PKI_CSR_TOO_LARGE", `CSR is ${size} bytes; the limit is ${MAX_CSR_BYTES}`);
  if (size === 0) throw malformed("empty input");
  if (Buffer.isBuffer(input) && input[0] === 0x30) return input;
  const text = typeof input === "string" ? input : input.toString("latin1");
  const match = /-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END (NEW )?CERTIFICATE REQUEST-----/.exec(text);
  if (!match) throw malformed("no PEM CERTIFICATE REQUEST block and not DER");
  const base64 = match[2]!.replace(/[\r\n]/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64) || base64.length % 4 !== 0) throw malformed("PEM body is not valid base64");
  return Buffer.from(base64, "base64");
}

/**
 * Parses a PKCS#10 CertificationRequest (RFC 2986 §4) strictly and checks what Moat requires:
 * an allowed signature algorithm matching the key, an allowed key, a valid signature (proof of
 * possession), and no request for CA powers. Each refusal is its own `PKI_CSR_*` code.
 */
export function verifyCsr(input: string | Buffer): VerifiedCsr {
  const der = decodeCsrInput(input);
  let cri: Tlv, algorithm: string, algorithmParams: Tlv | undefined, signature: Buffer, subject: NameAttribute[], spki: Tlv, attributes: Tlv | undefined;
  try {
    const outer = readSingle(der, 0x30);
    const parts = children(outer);
    if (parts.length !== 3) throw new DerError("CertificationRequest must have 3 fields");
    cri = expectTag(parts[0], 0x30, "certificationRequestInfo");
    const algorithmParts = children(expectTag(parts[1], 0x30, "signatureAlgorithm"));
    algorithm = decodeOid(algorithmParts[0]!);
    algorithmParams = algorithmParts[1];
    const bits = decodeBitString(expectTag(parts[2], 0x03, "signature"));
    if (bits.unusedBits !== 0) throw new DerError("signature has unused bits");
    signature = bits.bytes;
    const info = children(cri);
    if (decodeSmallInteger(expectTag(info[0], 0x02, "version")) !== 0) throw new DerError("version must be 0 (v1)");
    subject = decodeName(expectTag(info[1], 0x30, "subject"));
    spki = expectTag(info[2], 0x30, "subjectPKInfo");
    attributes = info[3];
    if (attributes !== undefined && attributes.tag !== 0xa0) throw new DerError("attributes must be [0]");
    if (info.length > 4) throw new DerError("unexpected fields after attributes");
  } catch (cause) {
    if (cause instanceof MoatError) throw cause;
    throw malformed(cause instanceof Error ? cause.message : "unreadable", cause);
  }

  const scheme = CSR_SIGNATURE_ALGORITHMS[algorithm];
  if (!scheme) throw new MoatError("PKI_CSR_SIGNATURE_ALGORITHM", `CSR signature algorithm ${algorithm} is not accepted (use ECDSA/RSA with SHA-256 or better, or Ed25519)`);
  // RFC 5758 §3.2 / RFC 8410 §3: parameters absent; RFC 4055 §5: RSA parameters NULL (absent tolerated).
  if (algorithmParams && !(scheme.key === "rsa" && algorithmParams.tag === 0x05 && algorithmParams.content.length === 0))
    throw new MoatError("PKI_CSR_SIGNATURE_ALGORITHM", "CSR signature algorithm has unexpected parameters");

  const { publicKey, keyKind, keyBits, spkiDer } = checkPublicKey(spki);
  if ((scheme.key === "ec") !== keyKind.startsWith("ec-") || (scheme.key === "rsa") !== (keyKind === "rsa") || (scheme.key === "ed25519") !== (keyKind === "ed25519"))
    throw new MoatError("PKI_CSR_SIGNATURE_ALGORITHM", `CSR signature algorithm ${algorithm} does not fit its ${keyKind} key`);

  let valid = false;
  try {
    valid = verify(scheme.digest, cri.encoded, publicKey, signature);
  } catch {
    valid = false;
  }
  if (!valid) throw new MoatError("PKI_CSR_SIGNATURE_INVALID", "the CSR signature does not verify with its public key (no proof of possession)");

  if (attributes) refuseCaRequests(attributes);
  return { der: Buffer.from(der), subject, spkiDer, publicKey, keyKind, keyBits };
}

/** Allow-list of subject keys: EC P-256/P-384 (named curves only), RSA 2048..8192, Ed25519. */
function checkPublicKey(spki: Tlv): { publicKey: KeyObject; keyKind: CsrKeyKind; keyBits: number; spkiDer: Buffer } {
  let keyAlgorithm: string;
  let curve: string | undefined;
  let algorithmFieldCount: number;
  let keyBits: { bytes: Buffer; unusedBits: number };
  try {
    const [algorithm, subjectPublicKey, extra] = children(spki);
    if (extra) throw new DerError("trailing fields in subjectPKInfo");
    const algorithmParts = children(expectTag(algorithm, 0x30, "SPKI algorithm"));
    algorithmFieldCount = algorithmParts.length;
    keyAlgorithm = decodeOid(algorithmParts[0]!);
    keyBits = decodeBitString(expectTag(subjectPublicKey, 0x03, "subjectPublicKey"));
    if (keyAlgorithm === OID.ecPublicKey) {
      // RFC 5480 §2.1.1: namedCurve only; explicit curve parameters are refused.
      if (algorithmParts[1]?.tag !== 0x06) throw new MoatError("PKI_CSR_KEY_UNSUPPORTED", "EC keys must use a named curve (P-256 or P-384)");
      curve = decodeOid(algorithmParts[1]);
    }
  } catch (cause) {
    if (cause instanceof MoatError) throw cause;
    throw malformed("subjectPKInfo is unreadable", cause);
  }
  if (keyAlgorithm === OID.ecPublicKey && curve !== OID.p256 && curve !== OID.p384)
    throw new MoatError("PKI_CSR_KEY_UNSUPPORTED", `EC curve ${curve} is not accepted (use P-256 or P-384)`);
  if (keyAlgorithm !== OID.ecPublicKey && keyAlgorithm !== OID.rsaEncryption && keyAlgorithm !== OID.ed25519)
    throw new MoatError("PKI_CSR_KEY_UNSUPPORTED", `key algorithm ${keyAlgorithm} is not accepted (use EC P-256/P-384, RSA or Ed25519)`);

  // Fast path: importing through JWK avoids OpenSSL 3's generic DER decoder, which costs more than a
  // signature. The SPKI is then already canonical (our reader refused non-minimal DER), so no export.
  const bits = keyBits.bytes;
  if (keyAlgorithm === OID.ecPublicKey && keyBits.unusedBits === 0 && algorithmFieldCount === 2) {
    const size = curve === OID.p256 ? 32 : 48;
    if (bits.length === 1 + 2 * size && bits[0] === 0x04) {
      const jwk = { kty: "EC", crv: size === 32 ? "P-256" : "P-384", x: bits.subarray(1, 1 + size).toString("base64url"), y: bits.subarray(1 + size).toString("base64url") };
      const publicKey = importJwk(jwk);
      return { publicKey, keyKind: size === 32 ? "ec-p256" : "ec-p384", keyBits: size * 8, spkiDer: Buffer.from(spki.encoded) };
    }
  }
  if (keyAlgorithm === OID.ed25519) {
    if (algorithmFieldCount !== 1 || keyBits.unusedBits !== 0 || bits.length !== 32) throw malformed("an Ed25519 key is 32 bytes without parameters (RFC 8410 §4)");
    return { publicKey: importJwk({ kty: "OKP", crv: "Ed25519", x: bits.toString("base64url") }), keyKind: "ed25519", keyBits: 256, spkiDer: Buffer.from(spki.encoded) };
  }

  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spki.encoded, format: "der", type: "spki" });
  } catch (cause) {
    throw malformed("the public key cannot be decoded", cause);
  }
  const spkiDer = publicKey.export({ format: "der", type: "spki" });
  if (keyAlgorithm === OID.rsaEncryption) {
    const modulusBits = publicKey.asymmetricKeyDetails?.modulusLength ?? 0;
    if (modulusBits < MIN_RSA_BITS) throw new MoatError("PKI_CSR_WEAK_KEY", `RSA key of ${modulusBits} bits is too weak; at least ${MIN_RSA_BITS} bits`);
    if (modulusBits > MAX_RSA_BITS) throw new MoatError("PKI_CSR_KEY_UNSUPPORTED", `RSA key of ${modulusBits} bits is larger than ${MAX_RSA_BITS}`);
    const exponent = publicKey.asymmetricKeyDetails?.publicExponent;
    if (exponent !== undefined && (exponent < 3n || exponent % 2n === 0n)) throw new MoatError("PKI_CSR_WEAK_KEY", "RSA public exponent is not acceptable");
    return { publicKey, keyKind: "rsa", keyBits: modulusBits, spkiDer };
  }
  // EC with a compressed point: decoded by OpenSSL, re-exported uncompressed.
  return curve === OID.p256 ? { publicKey, keyKind: "ec-p256", keyBits: 256, spkiDer } : { publicKey, keyKind: "ec-p384", keyBits: 384, spkiDer };
}

/** Imports a public JWK; a point off the curve or a bad length is a malformed CSR. */
function importJwk(jwk: Record<string, string>): KeyObject {
  try {
    return createPublicKey({ key: jwk, format: "jwk" });
  } catch (cause) {
    throw malformed("the public key is not a valid point", cause);
  }
}

/** RFC 2985 §5.4.2 extensionRequest: refuse basicConstraints CA:TRUE and keyCertSign/cRLSign (RFC 5280 §4.2.1.3). */
function refuseCaRequests(attributes: Tlv): void {
  try {
    for (const attribute of children(attributes)) {
      const [type, values] = children(attribute);
      if (!type || !values || decodeOid(type) !== OID.extensionRequest) continue;
      for (const extensions of children(expectTag(values, 0x31, "extensionRequest values"))) {
        for (const ext of children(expectTag(extensions, 0x30, "Extensions"))) {
          const parts = children(ext);
          const id = decodeOid(parts[0]!);
          const value = expectTag(parts[parts.length - 1], 0x04, "extnValue").content;
          if (id === OID.basicConstraints) {
            const fields = children(readSingle(value, 0x30));
            if (fields[0]?.tag === 0x01 && fields[0].content[0] !== 0)
              throw new MoatError("PKI_CSR_CA_REQUESTED", "the CSR asks for basicConstraints CA:TRUE; device certificates are never CAs");
          }
          if (id === OID.keyUsage) {
            const bits = decodeBitString(readSingle(value, 0x03)).bytes;
            // keyCertSign is bit 5 (0x04), cRLSign bit 6 (0x02) of the first octet.
            if (bits.length > 0 && (bits[0]! & 0x06) !== 0)
              throw new MoatError("PKI_CSR_CA_REQUESTED", "the CSR asks for keyCertSign or cRLSign key usage");
          }
        }
      }
    }
  } catch (cause) {
    if (cause instanceof MoatError) throw cause;
    throw malformed("the attributes are unreadable", cause);
  }
}
