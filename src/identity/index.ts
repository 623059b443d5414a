export { DeviceService, DEVICE_ID_PATTERN, assertDeviceId, type CreateDeviceInput, type UpdateDeviceInput } from "./device-service.js";
export { TokenService, type OperatorToken, type CreateTokenInput } from "./token-service.js";
export {
  DEVICE_STATUSES,
  type DeviceStatus,
  type DeviceRecord,
  type DeviceFilter,
  type DeviceRepository,
  type OperatorTokenRecord,
  type TokenRepository,
  type IdentityUnitOfWork,
  type IdentityStore,
} from "./ports.js";
