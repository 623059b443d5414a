// The device SDK's door (the package export `moat/device`). It runs on a device, so it loads no
// server code: only the crypto door, firmware verification (src/firmware/verify.ts) and small shared
// helpers. test/device-module-graph.test.ts follows the real module graph to keep it so.

// The device SDK: enrollment over EST, mTLS MQTT, automatic renewal, backoff (docs/device-sdk.md).
export {
  MoatDevice,
  type ConnectOptions,
  type DeviceBehaviour,
  type DeviceCertificate,
  type DeviceEvents,
  type EnrollOptions,
  type MessageHandler,
  type OpenOptions,
  type Pkcs11Options,
  type PublishOptions,
  type SubscribeOptions,
} from "./moat-device.js";
export { DeviceE2e } from "./device-e2e.js";
export { DeviceOta, type DeviceOtaOptions } from "./device-ota.js";
export { Backoff, type BackoffOptions } from "./backoff.js";
export { renewalTime, type RenewalPolicy } from "./renewal.js";
export type { ServerInfo } from "./server-client.js";
export type { DeviceStatusAnswer } from "./device-status.js";
export { MoatError, isMoatError, type ErrorCode } from "../errors.js";

// Over-the-air updates: TUF decides which image is current, the secure-boot check decides whether it may run.
export { OtaClient, provisionTufRoot, type OtaClientOptions, type OtaOutcome, type OtaStatusReport, type OtaUpdateRequest } from "./ota-client.js";
export { AbSlots, type SlotName, type SlotState } from "./ab-slots.js";
export { TufHttpsFetcher, type TufFetcherOptions } from "./tuf-https-fetcher.js";

// End-to-end payload protection (COSE, RFC 9052) between a device and its peers, through the broker.
export {
  PayloadSealer,
  PayloadOpener,
  Keyring,
  ReplayGuard,
  deriveDeviceKey,
  generateAgreementKeyPair,
  agreementCurveOf,
  kdfContext,
  sign1,
  verify1,
  type AgreementCurve,
  type DeviceKeyContext,
  type Decrypted,
  type Verified,
} from "../crypto/index.js";

// Firmware verification on the device (the secure-boot check; also `moat/firmware/verify` alone).
export {
  verifyFirmware,
  parseManifest,
  parsePublicKey,
  verifyKeyCertificate,
  verifyRevocationList,
  FileSecurityCounter,
  type FirmwarePublicKey,
  type SecureBootPolicy,
  type SecureBootResult,
  type SecurityCounter,
} from "../firmware/verify.js";
