import { createHash, randomBytes } from "node:crypto";
import { MoatError } from "../errors.js";
import { bitString, explicit, sequence, smallInteger, unsignedInteger, x509Time } from "../crypto/index.js";
import { children, decodeBitString, decodeOid, decodeTime, decodeUnsignedInteger, expectTag, readSingle, type Tlv } from "../crypto/index.js";
import { signatureScheme, signWith, type KeyType, type SigningKey } from "./key-types.js";
import { decodeName, formatName, type NameAttribute } from "./name.js";
import { OID } from "./oids.js";

/** Fields of a certificate to be signed; everything is already DER except dates and the serial. */
export interface TbsFields {
  serial: Buffer;
  issuerDer: Buffer;
  subjectDer: Buffer;
  notBefore: Date;
  notAfter: Date;
  spkiDer: Buffer;
  /** Encoded Extension elements in order. */
  extensions: readonly Buffer[];
}

/** Encodes a v3 TBSCertificate (RFC 5280 §4.1.2) for a signer of `keyType`. */
export function encodeTbsCertificate(fields: TbsFields, keyType: KeyType): Buffer {
  return sequence(
    explicit(0, smallInteger(2)),
    unsignedInteger(fields.serial),
    signatureScheme(keyType).algorithmIdentifier,
    fields.issuerDer,
    sequence(x509Time(fields.notBefore), x509Time(fields.notAfter)),
    fields.subjectDer,
    fields.spkiDer,
    explicit(3, sequence(...fields.extensions)),
  );
}

/** Signs a TBSCertificate and wraps it into a Certificate (RFC 5280 §4.1.1). */
export function signTbs(tbs: Buffer, keyType: KeyType, privateKey: SigningKey): Buffer {
  const signature = signWith(keyType, privateKey, tbs);
  return sequence(tbs, signatureScheme(keyType).algorithmIdentifier, bitString(signature));
}

/** A random positive serial: 16 bytes, top bit clear and second bit set so it always encodes to 16 octets (126 random bits; RFC 5280 §4.1.2.2 allows up to 20). */
export function randomSerial(): Buffer {
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x3f) | 0x40;
  return serial;
}

/** The parts of a certificate the PKI needs, parsed strictly. */
export interface ParsedCertificate {
  der: Buffer;
  tbsDer: Buffer;
  serial: Buffer;
  serialHex: string;
  signatureAlgorithm: string;
  issuerDer: Buffer;
  subjectDer: Buffer;
  subject: NameAttribute[];
  issuer: NameAttribute[];
  notBefore: Date;
  notAfter: Date;
  spkiDer: Buffer;
  /** The subjectPublicKey bits (what key identifiers and OCSP key hashes are computed over). */
  publicKeyBits: Buffer;
  extensions: Map<string, { critical: boolean; value: Buffer }>;
  /** The TBS signature and outer signature fields. */
  signatureValue: Buffer;
}

/**
 * Parses a DER certificate. Client certificates reach it from outside (EST re-enrollment, factory
 * enrollment), so anything malformed is `PKI_CERT_MALFORMED`, never a bare reader error.
 */
export function parseCertificate(der: Buffer): ParsedCertificate {
  try {
    return readCertificate(der);
  } catch (cause) {
    throw new MoatError("PKI_CERT_MALFORMED", `certificate is malformed: ${cause instanceof Error ? cause.message : "unreadable"}`, { cause });
  }
}

function readCertificate(der: Buffer): ParsedCertificate {
  const outer = readSingle(der, 0x30);
  const [tbs, sigAlg, sigValue] = children(outer);
  expectTag(tbs, 0x30, "tbsCertificate");
  expectTag(sigAlg, 0x30, "signatureAlgorithm");
  expectTag(sigValue, 0x03, "signatureValue");
  const fields = children(tbs!);
  let index = 0;
  if (fields[0]?.tag === 0xa0) index++;
  const serialTlv = expectTag(fields[index++], 0x02, "serialNumber");
  expectTag(fields[index++], 0x30, "signature");
  const issuer = expectTag(fields[index++], 0x30, "issuer");
  const validity = expectTag(fields[index++], 0x30, "validity");
  const subject = expectTag(fields[index++], 0x30, "subject");
  const spki = expectTag(fields[index++], 0x30, "subjectPublicKeyInfo");
  const extensions = new Map<string, { critical: boolean; value: Buffer }>();
  for (; index < fields.length; index++) {
    const field = fields[index]!;
    if (field.tag !== 0xa3) continue;
    for (const ext of children(expectTag(children(field)[0], 0x30, "extensions"))) {
      const parts = children(ext);
      const extnId = decodeOid(parts[0]!);
      const critical = parts.length === 3 && parts[1]!.tag === 0x01 && parts[1]!.content[0] !== 0;
      const value = expectTag(parts[parts.length - 1], 0x04, "extnValue").content;
      if (extensions.has(extnId)) throw new Error(`duplicate extension ${extnId}`);
      extensions.set(extnId, { critical, value });
    }
  }
  const [notBefore, notAfter] = children(validity);
  const spkiParts = children(spki);
  const serial = decodeUnsignedInteger(serialTlv);
  return {
    der: outer.encoded,
    tbsDer: tbs!.encoded,
    serial,
    serialHex: serial.toString("hex"),
    signatureAlgorithm: decodeOid(children(sigAlg!)[0]!),
    issuerDer: issuer.encoded,
    subjectDer: subject.encoded,
    subject: decodeName(subject),
    issuer: decodeName(issuer),
    notBefore: decodeTime(notBefore as Tlv),
    notAfter: decodeTime(notAfter as Tlv),
    spkiDer: spki.encoded,
    publicKeyBits: decodeBitString(expectTag(spkiParts[1], 0x03, "subjectPublicKey")).bytes,
    extensions,
    signatureValue: decodeBitString(sigValue!).bytes,
  };
}

/** The subject key identifier of a parsed certificate: the extension if present, else RFC 5280 §4.2.1.2 method 1. */
export function subjectKeyIdOf(cert: ParsedCertificate): Buffer {
  const ext = cert.extensions.get(OID.subjectKeyIdentifier);
  if (ext) return readSingle(ext.value, 0x04).content;
  return createHash("sha1").update(cert.publicKeyBits).digest();
}

/** SHA-256 fingerprint of a certificate's DER, lower-case hex. */
export function fingerprintOf(der: Buffer): string {
  return createHash("sha256").update(der).digest("hex");
}

export function subjectStringOf(cert: ParsedCertificate): string {
  return formatName(cert.subject);
}
