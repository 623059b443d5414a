/** The scanner's door: scope guard, port scan, service probes, checks and reports. */
export type {
  CredentialCheck,
  Finding,
  HostResult,
  OwaspIotCategory,
  PortResult,
  ScanProgress,
  ScanResult,
  ScanStatus,
  ServiceInfo,
  ServiceName,
  Severity,
  TlsCertificateInfo,
  TlsInfo,
  Transport,
} from "./types.js";
export { runScan, type ScanOptions } from "./scan.js";
export { DEFAULT_ALLOWED_TARGETS, MAX_ADDRESSES_PER_TARGET, parseAllowList, resolveTargets, runScope, type HostResolver, type ResolvedTarget } from "./target-scope.js";
export { DEFAULT_PORT_SPEC, IOT_PORTS, parsePortSpec, type PortSet } from "./port-spec.js";
export { FINDING_RULES, SEVERITY_ORDER, type FindingId, type FindingRule } from "./finding-rules.js";
export { DEFAULT_CREDENTIALS, type Credential } from "./default-credentials.js";
export { defaultTransport, type ScanTransport } from "./transport.js";
export { defaultConnector, nativeConnector, socketConnector, scanTcpPorts, type PortConnector, type PortProbeSession, type PortVerdict } from "./tcp-connect-scan.js";
export { Pacer } from "./pacer.js";
export { formatScanTable } from "./report-table.js";
export { toSarif } from "./report-sarif.js";
export { ScanService, toScanResult, addressSpellings, type ScanServiceSettings, type StoredScan } from "./scan-service.js";
export type { DeviceAddressLookup, ScanRepository, ScanRunRecord, ScanRunSummary, ScannerStore, ScannerUnitOfWork, StoredFinding } from "./ports.js";
