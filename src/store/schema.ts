/**
 * The database schema as Kysely sees it: one interface per table, grouped by domain.
 * Conventions (docs/dev/conventions.md): timestamps ISO text, booleans 0/1, JSON as text.
 */
import type { Generated } from "kysely";

// --- foundation ---
export interface MetaTable {
  key: string;
  value: string;
}

export interface DevicesTable {
  id: string;
  name: string;
  device_group: string | null;
  role: string;
  status: string;
  /** JSON object of string → string. */
  attributes: string;
  created_at: string;
  updated_at: string;
  last_seen_at: string | null;
  last_seen_address: string | null;
}

export interface OperatorTokensTable {
  /** Public lookup id, the middle part of the token string. */
  id: string;
  name: string;
  role: string;
  /** SHA-256 of the token's secret part, hex. The token itself is never stored. */
  secret_hash: string;
  created_at: string;
  created_by: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface AuditEventsTable {
  seq: number;
  time: string;
  type: string;
  severity: string;
  actor: string;
  subject: string;
  /** JSON object. */
  data: string;
  prev_hash: string;
  hash: string;
}

/** One row (id = 1): the chain's head, locked by every append so appends serialise across processes. */
export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}

/** Perfect subtrees of the audit Merkle tree: level ℓ, index i covers entries i·2^ℓ+1 … (i+1)·2^ℓ. */
export interface AuditTreeTable {
  level: number;
  idx: number;
  /** SHA-256, hex. */
  hash: string;
}

/** Signed tree heads (C2SP tlog-checkpoint notes), one per tree size. */
export interface AuditCheckpointsTable {
  tree_size: number;
  root_hash: string;
  note: string;
  created_at: string;
}

/** The Ed25519 key that signs checkpoints: sealed here, or in the PKCS#11 token (`location`). */
export interface AuditKeysTable {
  id: string;
  /** The signed-note key name (the log's origin). */
  name: string;
  /** Raw 32-byte public key, base64. */
  public_key: string;
  sealed_private_key: Buffer | null;
  location: string | null;
  created_at: string;
}

export interface ChangeFeedTable {
  seq: Generated<number>;
  kind: string;
  subject: string;
  /** JSON object. */
  data: string;
  created_at: string;
}

export interface CaCertificatesTable {
  serial: string;
  role: string;
  key_type: string;
  subject: string;
  certificate_pem: string;
  sealed_key: Buffer | null;
  not_after: string;
  active: number;
  created_at: string;
  /** Location of a CA key held in a PKCS#11 token (migration 0041); null when sealed_key holds it. */
  key_location: string | null;
}

// --- pki ---
export interface CertificatesTable {
  serial: string;
  device_id: string;
  issuer_serial: string;
  subject: string;
  fingerprint: string;
  key_kind: string;
  not_before: string;
  not_after: string;
  /** active | revoked (expired and superseded are derived). */
  status: string;
  revoked_at: string | null;
  revocation_reason: string | null;
  superseded_by: string | null;
  revoke_after: string | null;
  expiry_notified_at: string | null;
  created_at: string;
  certificate_der: Buffer;
}

export interface CrlsTable {
  ca_serial: string;
  crl_number: number;
  this_update: string;
  next_update: string;
  crl_der: Buffer;
}

export interface EnrollmentTokensTable {
  id: string;
  device_id: string;
  /** SHA-256 of the secret part, hex. */
  secret_hash: string;
  created_at: string;
  created_by: string;
  expires_at: string;
  used_at: string | null;
}

export interface ManufacturerCasTable {
  fingerprint: string;
  subject: string;
  certificate_pem: string;
  not_after: string;
  created_at: string;
}

// --- firmware ---
export interface FirmwareKeysTable {
  name: string;
  /** root | signing | tuf-root | tuf-targets | tuf-snapshot | tuf-timestamp */
  purpose: string;
  alg: string;
  key_id: string;
  public_key: Buffer;
  /** Envelope-sealed private key (aad `firmware-key:<name>`); null for an offline root or a key in the token. */
  sealed_private_key: Buffer | null;
  /** `pkcs11:<token>/<label>` of a key generated in the PKCS#11 token; null otherwise. */
  location: string | null;
  /** Root-signed key certificate (JSON) of a signing key. */
  certificate: string | null;
  issuer: string | null;
  not_before: string | null;
  not_after: string | null;
  revoked_at: string | null;
  revocation_reason: string | null;
  created_at: string;
}

export interface FirmwareRevocationListsTable {
  version: number;
  /** The root-signed revocation list (JSON). */
  document: string;
  created_at: string;
}

export interface OtaCampaignsTable {
  id: string;
  device_group: string;
  status: string;
  /** The whole campaign state (JSON), devices included. */
  data: string;
  created_at: string;
  updated_at: string;
}

// --- policy ---
export interface RolesTable {
  name: string;
  description: string;
  /** JSON array of { effect, action, resource }. */
  rules: string;
  /** 0/1: built-in roles are seeded by `moat init`; their rules come from code. */
  builtin: number;
  created_at: string;
  updated_at: string;
}

export interface RoleAssignmentsTable {
  role: string;
  /** device | group | token */
  kind: string;
  target: string;
  created_at: string;
  created_by: string;
}

// --- scanner ---
export interface ScanRunsTable {
  id: string;
  started_at: string;
  finished_at: string;
  status: string;
  /** JSON array of the targets as given. */
  targets: string;
  port_spec: string;
  actor: string;
  critical_count: number;
  high_count: number;
  medium_count: number;
  low_count: number;
  info_count: number;
  open_ports: number;
  /** JSON: the run's hosts, ports and services (findings are rows of scan_findings). */
  result: string;
}

export interface ScanFindingsTable {
  run_id: string;
  ordinal: number;
  rule_id: string;
  severity: string;
  title: string;
  evidence: string;
  remediation: string;
  /** JSON arrays. */
  owasp: string;
  etsi: string;
  address: string;
  port: number;
  transport: string;
  device_id: string | null;
}

// --- broker ---
/** Public keys a device may sign its MQTT JWTs with (`moat device key add`). */
export interface DeviceKeysTable {
  device_id: string;
  key_id: string;
  spki_pem: string;
  created_at: string;
  created_by: string;
}

/** Per-device HMAC secrets for HS256 MQTT JWTs, sealed by the KEK envelope. */
export interface DeviceSecretsTable {
  device_id: string;
  secret_id: string;
  sealed: Buffer;
  created_at: string;
  /** Null for the current secret; end of the grace period for the previous one. */
  not_after: string | null;
}

// --- sessions ---
/** A data-plane node's heartbeat (src/sessions): sessions of a node that stopped beating are not live. */
export interface MqttNodesTable {
  node_id: string;
  started_at: string;
  heartbeat_at: string;
}

/** One live MQTT session, from `device.connected` until `device.disconnected`. */
export interface MqttSessionsTable {
  session_id: string;
  device_id: string;
  client_id: string;
  node_id: string;
  address: string | null;
  listener: string | null;
  method: string | null;
  cert_serial: string | null;
  credential_id: string | null;
  connected_at: string;
}

/** A connection that replaced a live one with the same client id. */
export interface MqttSessionTakeoversTable {
  id: Generated<number>;
  at: string;
  client_id: string;
  device_id: string;
  previous_session: string;
  previous_address: string | null;
  previous_node: string | null;
  session_id: string;
  address: string | null;
  node_id: string;
}

// --- identity: group settings and firmware inventory ---
/** A group's settings (null: not configured); no row when nothing is configured. */
export interface GroupSettingsTable {
  device_group: string;
  /** JSON array of canonical CIDR strings. */
  allowed_cidrs: string | null;
  /** A duration like `1h` (src/lib/duration.ts). */
  silence_window: string | null;
  min_security_version: number | null;
  updated_at: string;
  updated_by: string;
}

/** The firmware each device last reported running. */
export interface FirmwareInventoryTable {
  device_id: string;
  version: string;
  security_version: number;
  reported_at: string;
  /** `ota` or `sdk`. */
  source: string;
}

// --- respond ---
export interface RespondPlaybooksTable {
  name: string;
  rule: string;
  /** JSON: the validated definition. */
  definition: string;
  /** The YAML as applied. */
  source: string;
  updated_at: string;
  updated_by: string;
}

export interface RespondActionsTable {
  id: string;
  alert_id: string;
  playbook: string | null;
  rule: string;
  action: string;
  subject_kind: string;
  subject_id: string;
  mode: string;
  status: string;
  reason: string | null;
  /** JSON. */
  detail: string;
  actor: string;
  created_at: string;
  undone_at: string | null;
  undone_by: string | null;
}

export interface RespondBansTable {
  range: string;
  action_id: string | null;
  expires_at: string | null;
  created_at: string;
  created_by: string;
}

export interface NotifyTargetsTable {
  name: string;
  kind: string;
  /** JSON, non-secret. */
  config: string;
  /** Webhook secret sealed by the KEK envelope. */
  sealed_secret: Buffer | null;
  min_severity: string;
  created_at: string;
  created_by: string;
}

export interface NotifyDeliveriesTable {
  id: string;
  target: string;
  event_type: string;
  payload: string;
  attempts: number;
  status: string;
  next_attempt_at: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

export interface IncidentsTable {
  id: string;
  title: string;
  status: string;
  severity: string;
  /** JSON array of alert ids. */
  alert_ids: string;
  from_seq: number | string;
  opened_at: string;
  opened_by: string;
  closed_at: string | null;
  closed_by: string | null;
  resolution: string | null;
}

// --- posture and compliance ---
export interface PostureRunsTable {
  id: string;
  run_at: string;
  finished_at: string;
  scope: string;
  actor: string;
  /** JSON array of check outcomes. */
  checks: string;
  critical_count: number;
  high_count: number;
  medium_count: number;
  low_count: number;
  info_count: number;
  suppressed: number;
  audit_seq: number | null;
}

export interface PostureFindingsTable {
  run_id: string;
  ordinal: number;
  finding_key: string;
  check_id: string;
  severity: string;
  /** JSON arrays/objects. */
  resources: string;
  device_ids: string;
  evidence: string;
  fix: string;
  /** JSON of the suppression that covered it, or null. */
  suppressed: string | null;
}

export interface PostureSuppressionsTable {
  id: Generated<number>;
  check_id: string;
  resource_id: string;
  reason: string;
  expires_at: string;
  created_at: string;
  created_by: string;
}

export interface ComplianceAttestationsTable {
  id: Generated<number>;
  standard: string;
  control_id: string;
  statement: string;
  evidence_url: string | null;
  owner: string;
  expires_at: string;
  created_at: string;
  created_by: string;
}

export interface ComplianceReportsTable {
  id: string;
  standard: string;
  created_at: string;
  actor: string;
  hash: string;
  summary: string;
  report: string;
}

// --- detect ---
/** An alert: one unresolved per rule and subject. */
export interface DetectAlertsTable {
  id: string;
  rule: string;
  /** `device` or `address-range`. */
  subject_kind: string;
  subject_id: string;
  severity: string;
  /** `open`, `acknowledged` or `resolved`. */
  status: string;
  count: number;
  first_seen: string;
  last_seen: string;
  /** JSON array of evidence items. */
  evidence: string;
  acknowledged_by: string | null;
  resolved_by: string | null;
}

/** A stored detection rule (built-in override or custom), as checked JSON. */
export interface DetectRulesTable {
  name: string;
  definition: string;
  updated_at: string;
  updated_by: string;
}

export interface Database {
  meta: MetaTable;
  devices: DevicesTable;
  operator_tokens: OperatorTokensTable;
  audit_events: AuditEventsTable;
  audit_head: AuditHeadTable;
  audit_tree: AuditTreeTable;
  audit_checkpoints: AuditCheckpointsTable;
  audit_keys: AuditKeysTable;
  change_feed: ChangeFeedTable;
  ca_certificates: CaCertificatesTable;
  // --- pki ---
  certificates: CertificatesTable;
  crls: CrlsTable;
  enrollment_tokens: EnrollmentTokensTable;
  manufacturer_cas: ManufacturerCasTable;
  // --- policy ---
  roles: RolesTable;
  role_assignments: RoleAssignmentsTable;
  // --- broker ---
  device_keys: DeviceKeysTable;
  device_secrets: DeviceSecretsTable;
  // --- keys ---
  // --- firmware ---
  firmware_keys: FirmwareKeysTable;
  firmware_revocation_lists: FirmwareRevocationListsTable;
  ota_campaigns: OtaCampaignsTable;
  // --- scanner ---
  scan_runs: ScanRunsTable;
  scan_findings: ScanFindingsTable;
  // --- sessions ---
  mqtt_nodes: MqttNodesTable;
  mqtt_sessions: MqttSessionsTable;
  mqtt_session_takeovers: MqttSessionTakeoversTable;
  // --- identity: group settings and firmware inventory ---
  group_settings: GroupSettingsTable;
  firmware_inventory: FirmwareInventoryTable;
  // --- respond ---
  respond_playbooks: RespondPlaybooksTable;
  respond_actions: RespondActionsTable;
  respond_bans: RespondBansTable;
  notify_targets: NotifyTargetsTable;
  notify_deliveries: NotifyDeliveriesTable;
  incidents: IncidentsTable;
  // --- posture and compliance ---
  posture_runs: PostureRunsTable;
  posture_findings: PostureFindingsTable;
  posture_suppressions: PostureSuppressionsTable;
  compliance_attestations: ComplianceAttestationsTable;
  compliance_reports: ComplianceReportsTable;
  // --- detect ---
  detect_alerts: DetectAlertsTable;
  detect_rules: DetectRulesTable;
}
