/** The Mosquitto data plane's door: setup, the supervised and synchronised Mosquitto, drift checks. */
export { compileDeviceAcls, type DynsecAcl, type DynsecAclType } from "./acl.js";
export { desiredClient, desiredState } from "./desired.js";
export { checkDrift, compareState, type DriftReport } from "./drift.js";
export { DynsecAdmin } from "./dynsec-client.js";
export { deviceRoleName, type DesiredClient } from "./dynsec-state.js";
export { startMosquittoPlane, type MosquittoPlane, type MosquittoPlaneDeps } from "./plane.js";
export { findMosquittoBinary } from "./process.js";
export type { DeviceFacts, DevicePolicy, DeviceSource, PlaneLogger, TrustMaterial } from "./ports.js";
export { sealedSecrets, type KeyValuePort, type MosquittoSecrets, type SealerPort } from "./secrets.js";
export { adminSecretName, mosquittoPaths, readMosquittoSetup, setupMosquitto, type MosquittoSetup } from "./setup.js";
