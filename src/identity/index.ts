/** The identity domain's door: devices, their credentials and enrollment tokens, operator tokens, and the device-id rule. */
export { DEVICE_ID_PATTERN, isDeviceId, assertDeviceId } from "./device-id.js";
export { DeviceService, type CreateDeviceInput, type UpdateDeviceInput } from "./device-service.js";
export { TokenService, MAX_TOKEN_LIFETIME_SECONDS, parseOperatorToken, type OperatorToken, type CreateTokenInput } from "./token-service.js";
export { DeviceCredentialService, parseDevicePublicKey, type RotatedSecret, type DevicePublicKey, type DeviceSecret } from "./device-credentials.js";
export { GROUP_NAME_PATTERN, isGroupName, assertGroupName } from "./group-name.js";
export { GroupSettingsService, canonicalCidr, MAX_ALLOWED_CIDRS, MAX_MIN_SECURITY_VERSION, type GroupSettingsPatch, type GroupSettingsView, type GroupSettingName } from "./group-settings.js";
export { FirmwareInventoryService, checkFirmwareReport, type FirmwareReport } from "./firmware-inventory.js";
export { EnrollmentTokenService, DEFAULT_ENROLL_TOKEN_TTL_MS, parseEnrollmentToken } from "./enrollment-tokens.js";
export {
  DEVICE_STATUSES,
  type DeviceStatus,
  type DeviceRecord,
  type DeviceFilter,
  type DeviceRepository,
  type OperatorTokenRecord,
  type TokenRepository,
  type DeviceKeyRow,
  type DeviceSecretRow,
  type CredentialRepository,
  type EnrollmentTokenRecord,
  type EnrollmentTokenRepository,
  type SecretSealer,
  type GroupSettingsRecord,
  type GroupSettingsRepository,
  type FirmwareInventoryRecord,
  type FirmwareInventoryRepository,
  type IdentityUnitOfWork,
  type IdentityStore,
} from "./ports.js";
