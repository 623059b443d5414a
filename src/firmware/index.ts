// The firmware domain's door for the server and the vendor's tools: verification (also reachable
// alone through ./verify.ts, the device side's door), signing, the TUF repository, OTA campaigns and
// key services. It loads no server package: storage comes in through ports.
// Everything a verifier needs (also the door device code uses: ./verify.ts).
export * from "./verify.js";
// Signing: what the server and the vendor's offline tools add to verification.
export { generateKeyPair, publicKeyOf, signMessage, type KeyPairBytes } from "./signature-algorithms.js";
export { memorySigner, signDocument, type DocumentSigner } from "./signed-document.js";
export { certifySigningKey } from "./key-certificate.js";
export { signRevocationList } from "./revocation-list.js";
export { signManifest } from "./manifest.js";
export { buildManifest, defaultImageTarget, type ManifestFacts } from "./manifest-builder.js";
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
export { linkOtaCampaigns, type FirmwareInventorySink, type OtaChannel, type OtaLinkLog } from "./ota-link.js";

/** The firmware services an App exposes (built in core.ts). */
export interface FirmwareServices {
  readonly keys: import("./firmware-key-service.js").FirmwareKeyService;
  readonly tuf: import("./tuf-service.js").TufService;
  readonly campaigns: import("./campaign-service.js").CampaignService;
}
export { encodeOtaMessage, mqttOtaNotifier, otaTopic, parseFirmwareInventoryMessage, parseOtaStatusMessage, statusTopic, type FirmwareInventoryMessage, type OtaStatusMessage } from "./ota-messages.js";
