import { MoatError } from "../errors.js";
import { encodeTbsCertificate, parseCertificate, randomSerial, signTbs, subjectKeyIdOf } from "./certificate.js";
import { authorityInfoAccess, authorityKeyIdentifier, basicConstraints, crlDistributionPoints, keyIdentifier, keyUsage, subjectKeyIdentifier } from "./extensions.js";
import { generateKey, spkiOf, type ExternalSigner, type KeyType, type SigningKey } from "./key-types.js";
import { loadIssuer, type CaKeyInput } from "./issuer.js";
import { formatName, moatName } from "./name.js";
import { assertTrustDomain, pkiUrls } from "./naming.js";
import { toPem } from "./pem.js";
import { readSingle, children, decodeBitString } from "../crypto/index.js";

/**
 * A CA certificate with its private key (the key is the caller's to protect: Moat stores it only
 * sealed), or, when the key was generated in a token, the signer that reaches it (no key bytes).
 */
export interface CaMaterial {
  certificatePem: string;
  certificateDer: Buffer;
  privateKeyPkcs8Der: Buffer | null;
  signer: ExternalSigner | null;
  keyType: KeyType;
  subject: string;
  serialHex: string;
  notAfter: Date;
}

const DAY_MS = 86_400_000;
/** Back-dating absorbs clock skew between Moat and the devices (a common CA practice). */
export const BACKDATE_MS = 5 * 60_000;
export const ROOT_VALIDITY_DAYS = 20 * 365 + 5;
export const ISSUING_VALIDITY_DAYS = 5 * 365 + 1;

export interface CreateCaHierarchyOptions {
  keyType: KeyType;
  trustDomain: string;
  now?: Date;
  /** Base of the CRL/OCSP/caIssuers URLs written into certificates (default `http://127.0.0.1:8080`). */
  publicUrl?: string;
  /** Keys already generated elsewhere (a PKCS#11 token); when absent both keys are generated here. */
  signers?: { root: ExternalSigner; issuing: ExternalSigner };
}

/**
 * Creates a root CA (20 years, pathLen 1) and an issuing CA under it (5 years, pathLen 0).
 * Both keys are fresh; nothing is written anywhere.
 */
export async function createCaHierarchy(options: CreateCaHierarchyOptions): Promise<{ root: CaMaterial; issuing: CaMaterial }> {
  assertTrustDomain(options.trustDomain);
  const now = options.now ?? new Date();
  const rootKey = options.signers ? heldKey(options.signers.root, options.keyType) : await generateKey(options.keyType);
  const rootSubject = moatName("Moat Root CA", options.trustDomain);
  const rootKeyId = keyIdentifier(publicKeyBitsOf(rootKey.spkiDer));
  const rootSerial = randomSerial();
  const rootNotAfter = secondsOnly(new Date(now.getTime() + ROOT_VALIDITY_DAYS * DAY_MS));
  // RFC 5280 §4.2.1.9/§4.2.1.3: basicConstraints and keyUsage critical; a self-signed root needs no AKI but it helps path building.
  const rootTbs = encodeTbsCertificate(
    {
      serial: rootSerial,
      issuerDer: rootSubject,
      subjectDer: rootSubject,
      notBefore: secondsOnly(new Date(now.getTime() - BACKDATE_MS)),
      notAfter: rootNotAfter,
      spkiDer: rootKey.spkiDer,
      extensions: [basicConstraints(true, 1), keyUsage(["keyCertSign", "cRLSign"]), subjectKeyIdentifier(rootKeyId), authorityKeyIdentifier(rootKeyId)],
    },
    options.keyType,
  );
  const rootDer = signTbs(rootTbs, options.keyType, rootKey.privateKey);
  const root: CaMaterial = {
    certificatePem: toPem(rootDer, "CERTIFICATE"),
    certificateDer: rootDer,
    privateKeyPkcs8Der: rootKey.privateKeyPkcs8Der,
    signer: options.signers?.root ?? null,
    keyType: options.keyType,
    subject: formatName(parseCertificate(rootDer).subject),
    serialHex: rootSerial.toString("hex"),
    notAfter: rootNotAfter,
  };
  const issuing = await createIssuingCa({ root, trustDomain: options.trustDomain, now, publicUrl: options.publicUrl, ...(options.signers ? { signer: options.signers.issuing } : {}) });
  return { root, issuing };
}

export interface CreateIssuingCaOptions {
  root: CaKeyInput;
  trustDomain: string;
  now?: Date;
  publicUrl?: string;
  /** Defaults to `Moat Issuing CA`; `moat ca rotate-issuer` passes a dated name so the generations are told apart. */
  commonName?: string;
  /** Key type of the new issuing CA (default: the root's). */
  keyType?: KeyType;
  /** The new issuing CA's key, generated elsewhere (a PKCS#11 token); default: a fresh software key. */
  signer?: ExternalSigner;
}

/** Signs a new issuing CA (pathLen 0) with the root key: used at init and by `moat ca rotate-issuer`. */
export async function createIssuingCa(options: CreateIssuingCaOptions): Promise<CaMaterial> {
  assertTrustDomain(options.trustDomain);
  const now = options.now ?? new Date();
  const rootCert = parseCertificate(pemOrDer(options.root.certificatePem));
  // loadIssuer checks the root key's type and that it belongs to the root certificate.
  const rootKey = loadIssuer(options.root).privateKey;
  const keyType = options.keyType ?? options.root.keyType;
  const key = options.signer ? heldKey(options.signer, keyType) : await generateKey(keyType);
  const urls = pkiUrls(options.publicUrl);
  const serial = randomSerial();
  const notAfter = secondsOnly(new Date(Math.min(now.getTime() + ISSUING_VALIDITY_DAYS * DAY_MS, rootCert.notAfter.getTime())));
  const tbs = encodeTbsCertificate(
    {
      serial,
      issuerDer: rootCert.subjectDer,
      subjectDer: moatName(options.commonName ?? "Moat Issuing CA", options.trustDomain),
      notBefore: secondsOnly(new Date(now.getTime() - BACKDATE_MS)),
      notAfter,
      spkiDer: key.spkiDer,
      extensions: [
        basicConstraints(true, 0),
        // digitalSignature lets the issuing CA sign OCSP responses itself (RFC 6960 §4.2.2.2).
        keyUsage(["digitalSignature", "keyCertSign", "cRLSign"]),
        subjectKeyIdentifier(keyIdentifier(publicKeyBitsOf(key.spkiDer))),
        authorityKeyIdentifier(subjectKeyIdOf(rootCert)),
        crlDistributionPoints(urls.crl("root")),
        authorityInfoAccess({ caIssuers: urls.caCert("root") }),
      ],
    },
    options.root.keyType,
  );
  const der = signTbs(tbs, options.root.keyType, rootKey);
  return {
    certificatePem: toPem(der, "CERTIFICATE"),
    certificateDer: der,
    privateKeyPkcs8Der: key.privateKeyPkcs8Der,
    signer: options.signer ?? null,
    keyType,
    subject: formatName(parseCertificate(der).subject),
    serialHex: serial.toString("hex"),
    notAfter,
  };
}

/** An external signer in the shape of a generated key (no PKCS#8: the key bytes are not here). */
function heldKey(signer: ExternalSigner, keyType: KeyType): { privateKey: SigningKey; privateKeyPkcs8Der: null; spkiDer: Buffer } {
  if (signer.keyType !== keyType) throw new MoatError("PKI_CA_INVALID", `the key at ${signer.location} is ${signer.keyType}, not ${keyType}`);
  return { privateKey: signer, privateKeyPkcs8Der: null, spkiDer: spkiOf(signer) };
}

/** The subjectPublicKey bits of an SPKI DER. */
export function publicKeyBitsOf(spkiDer: Buffer): Buffer {
  return decodeBitString(children(readSingle(spkiDer, 0x30))[1]!).bytes;
}

/** Certificates carry whole seconds; truncating keeps the returned notAfter equal to what is encoded. */
export function secondsOnly(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

/** Accepts a PEM certificate (the first CERTIFICATE block) or base64-less DER in a Buffer. */
export function pemOrDer(input: string | Buffer): Buffer {
  if (Buffer.isBuffer(input)) return input;
  const match = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----/.exec(input);
  if (!match) throw new MoatError("PKI_CA_INVALID", "no PEM CERTIFICATE block found");
  return Buffer.from(match[1]!.replace(/\s+/g, ""), "base64");
}
