import type { KeyObject } from "node:crypto";
import { MoatError } from "../errors.js";
import { pemOrDer } from "./ca-hierarchy.js";
import { parseCertificate, subjectKeyIdOf, type ParsedCertificate } from "./certificate.js";
import { importPrivateKey, keyTypeOf, spkiOf, type KeyType } from "./key-types.js";

/** An issuing CA ready to sign: its parsed certificate, key and key identifier. */
export interface Issuer {
  certificate: ParsedCertificate;
  certificatePem: string;
  keyType: KeyType;
  privateKey: KeyObject;
  /** The issuer's subject key identifier, written as the AKI of what it signs. */
  keyId: Buffer;
  serialHex: string;
}

/** Builds an Issuer from its certificate and PKCS#8 key, checking that the two belong together. */
export function loadIssuer(input: { certificatePem: string; privateKeyPkcs8Der: Buffer; keyType: KeyType }): Issuer {
  let certificate: ParsedCertificate;
  let privateKey: KeyObject;
  try {
    certificate = parseCertificate(pemOrDer(input.certificatePem));
    privateKey = importPrivateKey(input.privateKeyPkcs8Der);
  } catch (cause) {
    if (cause instanceof MoatError) throw cause;
    throw new MoatError("PKI_CA_INVALID", "the CA certificate or key cannot be read", { cause });
  }
  if (keyTypeOf(privateKey) !== input.keyType) throw new MoatError("PKI_CA_INVALID", `the CA key is not of type ${input.keyType}`);
  if (!spkiOf(privateKey).equals(certificate.spkiDer)) throw new MoatError("PKI_CA_INVALID", "the CA key does not match the CA certificate");
  return {
    certificate,
    certificatePem: input.certificatePem,
    keyType: input.keyType,
    privateKey,
    keyId: subjectKeyIdOf(certificate),
    serialHex: certificate.serialHex,
  };
}
