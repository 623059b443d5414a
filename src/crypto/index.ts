/** Pure cryptographic primitives shared by the server and the device side (no server packages). */
export { encodeCbor, decodeCanonicalCbor, CborTag } from "./cbor.js";
export { ALG, COSE_TAG, HEADER } from "./cose-constants.js";
export { aes256GcmSeal, aes256GcmOpen } from "./aead.js";
export { encrypt0, decrypt0, type Encrypt0Options, type Decrypt0Options, type Decrypted } from "./cose-encrypt0.js";
export { sign1, verify1, signatureAlgFor, type Sign1Options, type Verify1Options, type Verified, type SignatureAlg, type PublicKeyResolver } from "./cose-sign1.js";
export { Keyring, kidBytes, type SymmetricKeyResolver } from "./keyring.js";
export { ReplayWindow, ReplayGuard, type ReplayVerdict, type ReplayWindowState } from "./replay-window.js";
export { deriveDeviceKey, generateAgreementKeyPair, agreementCurveOf, kdfContext, type AgreementCurve, type DeviceKeyContext } from "./device-key.js";
export { PayloadSealer, PayloadOpener } from "./e2e-channel.js";
export { ecdsaRawToDer, ecdsaDerToRaw } from "./ecdsa-signature.js";
export { TLS_CIPHERS, TLS_SERVER_POLICY, TLS12_SUITES, TLS13_SUITES } from "./tls-policy.js";
export { publicKeyId, secretId } from "./credential-id.js";
export { canonicalJson, canonicalJsonBytes, parseCanonicalJson, type CanonicalJsonOptions, type CanonicalValue } from "./canonical-json.js";
// DER (X.690) building blocks: the PKI encodes certificates with them, the device SDK its CSRs and EST answers.
export {
  encodeLength,
  tlv,
  sequence,
  setOf,
  unsignedInteger,
  smallInteger,
  bigInteger,
  oid,
  nullValue,
  boolean,
  octetString,
  bitString,
  utf8String,
  ia5String,
  enumerated,
  explicit,
  implicitPrimitive,
  implicitConstructed,
  utcTime,
  generalizedTime,
  x509Time,
} from "./der/encode.js";
export { DerError, readTlv, readSingle, children, expectTag, decodeOid, decodeUnsignedInteger, decodeSmallInteger, decodeBitString, decodeTime, type Tlv } from "./der/reader.js";
