import { createPrivateKey, createPublicKey, generateKeyPair, sign, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { MoatError } from "../errors.js";
import { nullValue, oid, sequence } from "../crypto/index.js";
import { OID } from "./oids.js";

const generateKeyPairAsync = promisify(generateKeyPair);

/** Key types a Moat CA (and server-side generated device keys) may use. */
export type KeyType = "ec-p256" | "ec-p384" | "rsa-3072" | "ed25519";
export const KEY_TYPES: readonly KeyType[] = ["ec-p256", "ec-p384", "rsa-3072", "ed25519"];

export function isKeyType(value: unknown): value is KeyType {
  return typeof value === "string" && (KEY_TYPES as readonly string[]).includes(value);
}

/** A freshly generated key pair: the private key as PKCS#8 DER, the public key as SPKI DER. */
export interface GeneratedKey {
  keyType: KeyType;
  privateKey: KeyObject;
  privateKeyPkcs8Der: Buffer;
  spkiDer: Buffer;
}

/** Generates a key pair of `keyType` with node:crypto (OpenSSL's CSPRNG). */
export async function generateKey(keyType: KeyType): Promise<GeneratedKey> {
  const pair =
    keyType === "ec-p256"
      ? await generateKeyPairAsync("ec", { namedCurve: "P-256" })
      : keyType === "ec-p384"
        ? await generateKeyPairAsync("ec", { namedCurve: "P-384" })
        : keyType === "rsa-3072"
          ? await generateKeyPairAsync("rsa", { modulusLength: 3072, publicExponent: 0x10001 })
          : await generateKeyPairAsync("ed25519");
  return {
    keyType,
    privateKey: pair.privateKey,
    privateKeyPkcs8Der: pair.privateKey.export({ format: "der", type: "pkcs8" }),
    spkiDer: pair.publicKey.export({ format: "der", type: "spki" }),
  };
}

/** Imports a PKCS#8 DER private key. */
export function importPrivateKey(pkcs8Der: Buffer): KeyObject {
  return createPrivateKey({ key: pkcs8Der, format: "der", type: "pkcs8" });
}

/** Works out the KeyType of a private or public key; undefined for anything outside the allow-list. */
export function keyTypeOf(key: KeyObject): KeyType | undefined {
  const details = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case "ec":
      return details?.namedCurve === "prime256v1" ? "ec-p256" : details?.namedCurve === "secp384r1" ? "ec-p384" : undefined;
    case "rsa":
      return details?.modulusLength === 3072 ? "rsa-3072" : undefined;
    case "ed25519":
      return "ed25519";
    default:
      return undefined;
  }
}

/**
 * How a CA key of a given type signs: the AlgorithmIdentifier DER and the node:crypto digest.
 * P-384 pairs with SHA-384 (RFC 5480 §4 / CNSA); Ed25519 signs the message itself (RFC 8410 §3,
 * parameters absent); RSA uses PKCS#1 v1.5 with NULL parameters (RFC 4055 §5).
 */
export interface SignatureScheme {
  algorithmIdentifier: Buffer;
  digest: "sha256" | "sha384" | null;
}

const SCHEMES: Record<KeyType, SignatureScheme> = {
  "ec-p256": { algorithmIdentifier: sequence(oid(OID.ecdsaWithSha256)), digest: "sha256" },
  "ec-p384": { algorithmIdentifier: sequence(oid(OID.ecdsaWithSha384)), digest: "sha384" },
  "rsa-3072": { algorithmIdentifier: sequence(oid(OID.sha256WithRsa), nullValue()), digest: "sha256" },
  ed25519: { algorithmIdentifier: sequence(oid(OID.ed25519)), digest: null },
};

export function signatureScheme(keyType: KeyType): SignatureScheme {
  return SCHEMES[keyType];
}

/**
 * A CA key this process cannot read: it signs on request (a PKCS#11 token's non-extractable key).
 * `signSync` returns the signatureValue for `signatureScheme(keyType)` over `data` (for ECDSA a DER
 * Ecdsa-Sig-Value, RFC 3279 §2.2.3). The keys door's `CaKeySigner` has this shape.
 */
export interface ExternalSigner {
  readonly keyType: KeyType;
  readonly publicKey: KeyObject;
  /** Where the key lives (e.g. `pkcs11:<token label>/<object label>`); not secret. */
  readonly location: string;
  signSync(data: Buffer): Buffer;
}

/** What the PKI signs with: a software key held in memory, or an external signer. */
export type SigningKey = KeyObject | ExternalSigner;

export function isExternalSigner(key: SigningKey): key is ExternalSigner {
  return typeof (key as Partial<ExternalSigner>).signSync === "function";
}

/** Signs `data` the way `signatureScheme(keyType)` says; ECDSA signatures come out DER-encoded (X9.62). */
export function signWith(keyType: KeyType, key: SigningKey, data: Buffer): Buffer {
  if (!isExternalSigner(key)) return sign(SCHEMES[keyType].digest, data, key);
  if (key.keyType !== keyType) throw new MoatError("PKI_CA_INVALID", `the signer at ${key.location} holds a ${key.keyType} key, not ${keyType}`);
  return key.signSync(data);
}

/** The SPKI DER of a key's public half (or of an external signer's public key). */
export function spkiOf(key: SigningKey): Buffer {
  const publicKey = isExternalSigner(key) ? key.publicKey : key.type === "public" ? key : createPublicKey(key);
  return publicKey.export({ format: "der", type: "spki" });
}
