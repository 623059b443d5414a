export { Envelope, parseEnvelopeHeader, looksLikeEnvelope, type EnvelopeHeader } from "./envelope.js";
export { softwareKek, singleKekProvider, type Kek, type KekProvider, type KekVersionInfo } from "./kek.js";
export { createKekFile, fileKekProvider, envKekProvider, parseKekRing, KEK_FILE } from "./file-provider.js";
export { Pkcs11Token, type Pkcs11Config } from "./pkcs11-token.js";
export { TokenSigningKeyVault, ED25519_KEY_LABEL_PREFIX, P256_KEY_LABEL_PREFIX, type TokenSigningAlgorithm } from "./token-signing-keys.js";
export { Pkcs11KekProvider, createTokenCaKey, loadTokenCaKey, KEK_LABEL_PREFIX, CA_KEY_LABEL_PREFIX } from "./pkcs11-provider.js";
export type { CaKeySigner } from "./ca-signer.js";
export {
  KekRotation,
  envelopePrefix,
  type SealedBlob,
  type SealedBlobStore,
  type RotationState,
  type RotationStateStore,
  type RotationReport,
  type KekStatusReport,
  type KekUsage,
} from "./rotation.js";
export { kekProviderFromConfig, pkcs11ConfigFrom, readPinFile, type KeysConfig } from "./configured-provider.js";
export { DataProtection, MAX_PROTECTED_BYTES } from "./data-protection.js";
