/** The posture domain's door: Defender-style checks over Moat's own data, their runs, findings and suppressions. */
export { CHECKS, DEVICE_SCOPED_CHECKS, checkDefinition, type CheckDefinition } from "./catalogue.js";
export { PostureService, type PostureServiceOptions } from "./service.js";
export { PostureChangeFollower, deviceOfChange } from "./change-follower.js";
export { SEVERITIES, emptyCounts, type CheckOutcome, type CheckStatus, type Finding, type PostureRun, type PostureRunSummary, type Resource, type Severity, type Suppression } from "./model.js";
export type {
  CaRow,
  CertificateRow,
  DeviceRow,
  GroupPostureSettings,
  InstallationFacts,
  LiveSessionRow,
  PostureDataPort,
  PostureRepository,
  PostureStore,
  PostureUnitOfWork,
  RegisteredKeyRow,
  ScanFindingRow,
  StoredFinding,
  TakeoverRow,
} from "./ports.js";
