/**
 * What posture checks need to know about a certificate's key without a full X.509 parse per
 * certificate (Node's X509Certificate costs about 1 ms each; a fleet has hundreds of thousands):
 * the SPKI's SHA-256 (to find one key on several devices), its algorithm and strength, and the
 * signature algorithm; plus the PKI's rule for what is too weak.
 */
import { createHash } from "node:crypto";
import { children, decodeBitString, decodeOid, expectTag, readSingle } from "../crypto/index.js";
import { OID } from "./oids.js";

export interface KeyFacts {
  /** SHA-256 of the DER SubjectPublicKeyInfo, hex. */
  spkiSha256: string;
  algorithm: "ec" | "rsa" | "ed25519" | "ed448" | (string & {});
  /** Named curve for EC keys (`P-256`, `P-384`, `P-521`, or the OID of another curve). */
  curve: string | null;
  /** Modulus bits for RSA; field size for curves. */
  bits: number;
  /** Signature algorithm of the certificate (`ecdsa-with-SHA256`, …, or its OID). */
  signatureAlgorithm: string;
}

const CURVES: Record<string, { name: string; bits: number }> = {
  [OID.p256]: { name: "P-256", bits: 256 },
  [OID.p384]: { name: "P-384", bits: 384 },
  "1.3.132.0.35": { name: "P-521", bits: 521 },
  "1.2.840.10045.3.1.1": { name: "P-192", bits: 192 },
  "1.3.132.0.33": { name: "P-224", bits: 224 },
  "1.3.132.0.10": { name: "secp256k1", bits: 256 },
};

const SIGNATURES: Record<string, string> = {
  [OID.ecdsaWithSha256]: "ecdsa-with-SHA256",
  [OID.ecdsaWithSha384]: "ecdsa-with-SHA384",
  [OID.ecdsaWithSha512]: "ecdsa-with-SHA512",
  [OID.sha256WithRsa]: "sha256WithRSAEncryption",
  [OID.sha384WithRsa]: "sha384WithRSAEncryption",
  [OID.sha512WithRsa]: "sha512WithRSAEncryption",
  "1.2.840.113549.1.1.10": "RSASSA-PSS",
  [OID.ed25519]: "Ed25519",
  "1.3.101.113": "Ed448",
  "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
  "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
  "1.2.840.10045.4.1": "ecdsa-with-SHA1",
};

/** Key facts of a SubjectPublicKeyInfo (DER). */
export function publicKeyFacts(spkiDer: Buffer, signatureAlgorithm = ""): KeyFacts {
  const spki = readSingle(spkiDer, 0x30);
  const [algorithmId, keyBits] = children(spki);
  const algorithmParts = children(expectTag(algorithmId, 0x30, "algorithm"));
  const oid = decodeOid(algorithmParts[0]!);
  const spkiSha256 = createHash("sha256").update(spkiDer).digest("hex");
  if (oid === OID.ecPublicKey) {
    const curveOid = algorithmParts[1]?.tag === 0x06 ? decodeOid(algorithmParts[1]) : "explicit-parameters";
    const curve = CURVES[curveOid];
    return { spkiSha256, algorithm: "ec", curve: curve?.name ?? curveOid, bits: curve?.bits ?? 0, signatureAlgorithm };
  }
  if (oid === OID.rsaEncryption) {
    const key = readSingle(decodeBitString(expectTag(keyBits, 0x03, "subjectPublicKey")).bytes, 0x30);
    let modulus = children(key)[0]!.content;
    while (modulus.length > 1 && modulus[0] === 0) modulus = modulus.subarray(1);
    const bits = modulus.length * 8 - Math.clz32(modulus[0]!) + 24;
    return { spkiSha256, algorithm: "rsa", curve: null, bits, signatureAlgorithm };
  }
  if (oid === OID.ed25519) return { spkiSha256, algorithm: "ed25519", curve: null, bits: 256, signatureAlgorithm };
  if (oid === "1.3.101.113") return { spkiSha256, algorithm: "ed448", curve: null, bits: 456, signatureAlgorithm };
  return { spkiSha256, algorithm: oid, curve: null, bits: 0, signatureAlgorithm };
}

/** Key facts of a DER certificate: walks only to the SPKI and the signature algorithm. */
export function certificateKeyFacts(der: Buffer): KeyFacts {
  const outer = readSingle(der, 0x30);
  const [tbs, sigAlg] = children(outer);
  const signatureOid = decodeOid(children(expectTag(sigAlg, 0x30, "signatureAlgorithm"))[0]!);
  const fields = children(expectTag(tbs, 0x30, "tbsCertificate"));
  // version [0] is optional; then serial, signature, issuer, validity, subject, subjectPublicKeyInfo.
  const spki = expectTag(fields[fields[0]?.tag === 0xa0 ? 6 : 5], 0x30, "subjectPublicKeyInfo");
  return publicKeyFacts(spki.encoded, SIGNATURES[signatureOid] ?? signatureOid);
}

/**
 * Why a key or signature is too weak for Moat's fleet, or null when it is acceptable: RSA under 2048
 * bits (NIST SP 800-131A), curves other than P-256/P-384/P-521 and Ed25519/Ed448, unknown algorithms,
 * and SHA-1 or MD5 signatures.
 */
export function weakKeyReason(facts: KeyFacts): string | null {
  if (facts.algorithm === "rsa" && facts.bits < 2048) return `RSA key of ${facts.bits} bits (at least 2048 needed)`;
  if (facts.algorithm === "ec" && !["P-256", "P-384", "P-521"].includes(facts.curve ?? "")) return `EC key on curve ${facts.curve} (P-256, P-384 or P-521 expected)`;
  if (!["ec", "rsa", "ed25519", "ed448"].includes(facts.algorithm)) return `key algorithm ${facts.algorithm} is not one Moat accepts`;
  if (/sha1|md5/i.test(facts.signatureAlgorithm)) return `signed with ${facts.signatureAlgorithm}`;
  return null;
}
