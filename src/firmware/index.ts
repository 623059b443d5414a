// The firmware domain's door. Everything exported here loads no server package (no store, no
// database driver, no web framework), so device code can import it; storage comes in through ports.
export { canonicalize, canonicalBytes, parseCanonical, type CanonicalValue } from "./canonical-json.js";
export { toBase64Url, fromBase64Url } from "./bytes.js";
export {
  SIGNATURE_ALGORITHMS,
  assertSignatureAlgorithm,
  isSignatureAlgorithm,
  generateKeyPair,
  publicKeyOf,
  signMessage,
  verifyMessage,
  type KeyPairBytes,
  type SignatureAlgorithm,
  type SignatureCheck,
} from "./signature-algorithms.js";
export { firmwarePublicKey, keyIdOf, parsePublicKey, serializePublicKey, PUBLIC_KEY_FILE_TYPE, type FirmwarePublicKey } from "./public-key.js";
export { memorySigner, signDocument, type DocumentSigner, type SignedDocument, type DocumentSignature } from "./signed-document.js";
export { certifySigningKey, verifyKeyCertificate, KEY_CERTIFICATE_TYPE, type KeyCertificate } from "./key-certificate.js";
export { signRevocationList, verifyRevocationList, REVOCATION_LIST_TYPE, type RevocationList, type RevokedKey } from "./revocation-list.js";
export {
  parseManifest,
  serializeManifest,
  signManifest,
  KNOWN_EXTENSIONS,
  MANIFEST_TYPE,
  type FirmwareManifest,
  type InstallConstraints,
  type ManifestExtension,
  type SignedManifest,
} from "./manifest.js";
export { buildManifest, defaultImageTarget, type ManifestFacts } from "./manifest-builder.js";
export { assertSafeTargetPath } from "./target-path.js";
export { digestImage, type ImageDigest, type ImageSource } from "./image-digest.js";
export { FileSecurityCounter, writeFileAtomic, type SecurityCounter } from "./security-counter.js";
export { verifyFirmware, type SecureBootPolicy, type SecureBootResult } from "./secure-boot-verifier.js";
export { verifyLegacyFirmware, LEGACY_WARNINGS, type LegacyCheck, type LegacyResult } from "./legacy-verifier.js";
export { generateTufKey, tufPublicKey, tufSignerFromSeed, MemoryTufKeyring, TUF_ROLES, type TufKeyring, type TufRole, type TufSigner } from "./tuf-keys.js";
export {
  TufRepository,
  DEFAULT_TUF_EXPIRIES,
  type TufExpiries,
  type TufRepositoryStatus,
  type TufRoleKeys,
  type TufTargetInfo,
  type TufTargetInput,
} from "./tuf-repository.js";
export { createTufHandler, type TufHandlerOptions } from "./tuf-http-handler.js";
export {
  abortCampaign,
  createCampaign,
  parseDeviceReport,
  parseFailureRate,
  parseStages,
  pauseCampaign,
  reportDeviceStatus,
  resumeCampaign,
  summarizeCampaign,
  type Campaign,
  type CampaignDevice,
  type CampaignEvent,
  type CampaignRelease,
  type CampaignStatus,
  type CampaignTransition,
  type DeviceOtaStatus,
  type OtaMessage,
  type OtaNotification,
} from "./campaign.js";
// Server-side services: they depend on storage only through the ports below (no store import).
export type {
  CampaignRepository,
  FirmwareKeyPurpose,
  FirmwareKeyRecord,
  FirmwareKeyRepository,
  FirmwareStore,
  FirmwareUnitOfWork,
  GroupDirectory,
  OtaNotifier,
  RevocationListRepository,
  SecretSealer,
} from "./ports.js";
export { FirmwareKeyService, firmwareKeyAad, type FirmwareKeyView } from "./firmware-key-service.js";
export { TufService, type TufInitOptions } from "./tuf-service.js";
export { CampaignService, UNDELIVERED, type ReleaseInput } from "./campaign-service.js";
export { linkOtaCampaigns, type OtaChannel, type OtaLinkLog } from "./ota-link.js";

/** The firmware services an App exposes (built in core.ts). */
export interface FirmwareServices {
  readonly keys: import("./firmware-key-service.js").FirmwareKeyService;
  readonly tuf: import("./tuf-service.js").TufService;
  readonly campaigns: import("./campaign-service.js").CampaignService;
}
export { encodeOtaMessage, mqttOtaNotifier, otaTopic, parseOtaStatusMessage, statusTopic, type OtaStatusMessage } from "./ota-messages.js";
