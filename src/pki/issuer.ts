import { MoatError } from "../errors.js";
import { pemOrDer } from "./ca-hierarchy.js";
import { parseCertificate, subjectKeyIdOf, type ParsedCertificate } from "./certificate.js";
import { importPrivateKey, isExternalSigner, keyTypeOf, spkiOf, type ExternalSigner, type KeyType, type SigningKey } from "./key-types.js";

/** An issuing CA ready to sign: its parsed certificate, key and key identifier. */
export interface Issuer {
  certificate: ParsedCertificate;
  certificatePem: string;
  keyType: KeyType;
  /** A software key unsealed in memory, or an external signer (a key in a PKCS#11 token). */
  privateKey: SigningKey;
  /** The issuer's subject key identifier, written as the AKI of what it signs. */
  keyId: Buffer;
  serialHex: string;
}

/** A CA certificate with the key that signs for it: PKCS#8 DER held here, or an external signer. */
export interface CaKeyInput {
  certificatePem: string;
  keyType: KeyType;
  privateKeyPkcs8Der?: Buffer | null;
  signer?: ExternalSigner | null;
}

/** Builds an Issuer from its certificate and key (PKCS#8 or external signer), checking that the two belong together. */
export function loadIssuer(input: CaKeyInput): Issuer {
  let certificate: ParsedCertificate;
  let privateKey: SigningKey;
  try {
    certificate = parseCertificate(pemOrDer(input.certificatePem));
  } catch (cause) {
    throw new MoatError("PKI_CA_INVALID", "the CA certificate cannot be read", { cause });
  }
  try {
    if (input.signer) privateKey = input.signer;
    else if (input.privateKeyPkcs8Der) privateKey = importPrivateKey(input.privateKeyPkcs8Der);
    else throw new MoatError("PKI_CA_INVALID", "the CA has neither a key nor a signer");
  } catch (cause) {
    if (cause instanceof MoatError) throw cause;
    throw new MoatError("PKI_CA_INVALID", "the CA certificate or key cannot be read", { cause });
  }
  const actualType = isExternalSigner(privateKey) ? privateKey.keyType : keyTypeOf(privateKey);
  if (actualType !== input.keyType) throw new MoatError("PKI_CA_INVALID", `the CA key is not of type ${input.keyType}`);
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
