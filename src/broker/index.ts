/** The broker domain's door: the MQTT broker node, its ports, settings and metrics. */
export { startBroker, type BrokerDeps, type BrokerLogger, type DeviceMessage, type MoatBroker, type ServerPublishOptions } from "./broker.js";
export { DEFAULT_BROKER_SETTINGS, resolveBrokerSettings, isLoopbackHost, type BrokerSettings } from "./settings.js";
export { MetricsRegistry, type BrokerMetrics } from "./metrics.js";
export { normalizeSerial } from "./cert-auth.js";
export { CONNECTABLE_STATUSES } from "./authenticator.js";
export { KEY_ALGORITHMS, SECRET_ALGORITHMS } from "./jwt-auth.js";
export { InMemoryDeviceDirectory } from "./memory-directory.js";
export type {
  BrokerAction,
  BrokerDecision,
  BrokerEvent,
  BrokerEventSink,
  BrokerSubject,
  BrokerTlsMaterial,
  Decider,
  DeviceDirectory,
  DeviceHmacSecret,
  DeviceRecord,
  DeviceStatus,
  LastSeenEntry,
  LastSeenWriter,
  RegisteredPublicKey,
  RevocationSource,
  TlsMaterialSource,
  TrafficObserver,
} from "./ports.js";
export { MoatDeviceDirectory, type DeviceRegistryPort, type DeviceCertificatesPort, type DeviceCredentialsPort } from "./moat-directory.js";
