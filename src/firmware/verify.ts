// The firmware domain's second door: verification only. A device checks a signed manifest and its
// image against pinned root keys, key certificates and a revocation list, and keeps its
// anti-rollback counter; none of that needs the TUF repository, campaigns or key services, so this
// door reaches none of them (the device side imports firmware only through here).
export { toBase64Url, fromBase64Url } from "./bytes.js";
export {
  SIGNATURE_ALGORITHMS,
  assertSignatureAlgorithm,
  isSignatureAlgorithm,
  verifyMessage,
  type SignatureAlgorithm,
  type SignatureCheck,
} from "./signature-algorithms.js";
export { firmwarePublicKey, keyIdOf, parsePublicKey, serializePublicKey, PUBLIC_KEY_FILE_TYPE, type FirmwarePublicKey } from "./public-key.js";
export { documentBytes, type SignedDocument, type DocumentSignature } from "./signed-document.js";
export { verifyKeyCertificate, KEY_CERTIFICATE_TYPE, type KeyCertificate } from "./key-certificate.js";
export { verifyRevocationList, REVOCATION_LIST_TYPE, type RevocationList, type RevokedKey } from "./revocation-list.js";
export {
  parseManifest,
  serializeManifest,
  KNOWN_EXTENSIONS,
  MANIFEST_TYPE,
  type FirmwareManifest,
  type InstallConstraints,
  type ManifestExtension,
  type SignedManifest,
} from "./manifest.js";
export { assertSafeTargetPath } from "./target-path.js";
export { digestImage, type ImageDigest, type ImageSource } from "./image-digest.js";
export { FileSecurityCounter, type SecurityCounter } from "./security-counter.js";
export { verifyFirmware, type SecureBootPolicy, type SecureBootResult } from "./secure-boot-verifier.js";
export { verifyLegacyFirmware, LEGACY_WARNINGS, type LegacyCheck, type LegacyResult } from "./legacy-verifier.js";
