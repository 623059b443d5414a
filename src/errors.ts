/**
 * Moat's one table of error codes. Every `MoatError` carries a code from here; the HTTP status is
 * taken from the table so the API, the CLI and the docs agree. `test/errors-doc.test.ts` checks that
 * every code below is documented in docs/errors.md.
 *
 * Each domain has its own section; keep entries sorted by code inside a section.
 */
export const ERROR_CODES = {
  // --- foundation: config, store, keys, general ---
  CONFIG_INVALID: { status: 500, title: "A configuration setting is invalid" },
  DATA_DIR_ALREADY_INITIALIZED: { status: 409, title: "The data directory is already initialised" },
  DATA_DIR_NOT_INITIALIZED: { status: 500, title: "The data directory has not been initialised" },
  STORE_UNREACHABLE: { status: 503, title: "The database cannot be reached" },
  STORE_CONFLICT: { status: 409, title: "A concurrent change conflicted; retry" },
  SCHEMA_OUTDATED: { status: 503, title: "The database schema is older than this moat: run moat migrate" },
  SCHEMA_NEWER: { status: 503, title: "The database was migrated by a newer moat" },
  MIGRATION_FAILED: { status: 500, title: "A database migration failed and was rolled back" },
  KEK_MISSING: { status: 500, title: "The key-encryption key is missing" },
  KEK_INVALID: { status: 500, title: "The key-encryption key is malformed" },
  KEK_MISMATCH: { status: 500, title: "The key-encryption key does not match this data directory" },
  ENVELOPE_MALFORMED: { status: 500, title: "An encrypted envelope is malformed" },
  ENVELOPE_DECRYPT_FAILED: { status: 500, title: "An encrypted envelope failed authentication" },
  VALIDATION_FAILED: { status: 400, title: "The request is invalid" },
  DURATION_INVALID: { status: 400, title: "A duration is not valid" },
  BODY_MALFORMED: { status: 400, title: "The request body is not valid JSON" },
  BODY_TOO_LARGE: { status: 413, title: "The request body is too large" },
  LISTEN_FAILED: { status: 500, title: "A listener could not bind its port" },
  NOT_FOUND: { status: 404, title: "No such resource" },
  PAGE_LIMIT_EXCEEDED: { status: 400, title: "A page holds at most 1,000 items" },
  REQUEST_HEADERS_TOO_LARGE: { status: 431, title: "The request headers are too large" },
  REQUEST_MALFORMED: { status: 400, title: "The request is not valid HTTP" },
  REQUEST_TIMEOUT: { status: 408, title: "The request was not received in time" },
  RATE_LIMITED: { status: 429, title: "Too many requests" },
  EVENT_STREAM_BUSY: { status: 503, title: "The server serves as many event streams as it allows" },
  INTERNAL: { status: 500, title: "Internal error" },
  // --- identity: devices, operators, tokens ---
  AUTH_TOKEN_MISSING: { status: 401, title: "An API token is required" },
  AUTH_TOKEN_INVALID: { status: 401, title: "The API token is invalid, expired or revoked" },
  AUTH_FORBIDDEN: { status: 403, title: "The token's role does not allow this action" },
  DEVICE_ID_INVALID: { status: 400, title: "The device id is not valid" },
  DEVICE_EXISTS: { status: 409, title: "A device with this id already exists" },
  DEVICE_NOT_FOUND: { status: 404, title: "No such device" },
  DEVICE_ROLE_INVALID: { status: 400, title: "The role does not exist or is not a device role" },
  DEVICE_STATUS_TRANSITION: { status: 409, title: "That status change is not allowed" },
  FIRMWARE_REPORT_INVALID: { status: 400, title: "A device's firmware report is malformed" },
  TOKEN_EXISTS: { status: 409, title: "A token with this name already exists" },
  TOKEN_NOT_FOUND: { status: 404, title: "No such API token" },
  // --- audit ---
  AUDIT_CHAIN_BROKEN: { status: 500, title: "The audit hash chain does not verify" },
  AUDIT_CHECKPOINT_FOREIGN: { status: 422, title: "The checkpoint belongs to another log" },
  AUDIT_ENTRY_NOT_FOUND: { status: 404, title: "No audit entry has that sequence number" },
  AUDIT_HEAD_MISSING: { status: 500, title: "The audit log's head row is missing" },
  AUDIT_KEY_MISSING: { status: 500, title: "The installation has no audit key yet" },
  AUDIT_LOG_REWRITTEN: { status: 500, title: "The audit log does not extend the checkpoint" },
  AUDIT_LOG_TRUNCATED: { status: 500, title: "The audit log is shorter than the checkpoint" },
  AUDIT_NOTE_MALFORMED: { status: 400, title: "A signed note, checkpoint, proof or verifier key is malformed" },
  AUDIT_PROOF_INVALID: { status: 422, title: "The proof does not verify" },
  AUDIT_SIGNATURE_INVALID: { status: 422, title: "The signature does not verify with the audit key" },
  AUDIT_TREE_MISMATCH: { status: 500, title: "The stored Merkle tree disagrees with the audit entries" },
  AUDIT_WITNESS_FAILED: { status: 502, title: "The checkpoint could not be handed to the witness" },
  // --- pki ---
  PKI_CA_INVALID: { status: 500, title: "The CA certificate or key is unusable" },
  PKI_CA_NOT_FOUND: { status: 404, title: "No such CA in this data directory" },
  PKI_CA_KEY_IN_TOKEN: { status: 409, title: "The CA key lives in a PKCS#11 token and cannot leave it" },
  PKI_CERT_ALREADY_REVOKED: { status: 409, title: "The certificate is already revoked" },
  PKI_CERT_MALFORMED: { status: 400, title: "The certificate is not valid DER X.509" },
  PKI_CERT_NOT_FOUND: { status: 404, title: "No certificate with that serial" },
  PKI_CSR_CA_REQUESTED: { status: 400, title: "The CSR asks for CA powers" },
  PKI_CSR_KEY_UNSUPPORTED: { status: 400, title: "The CSR's key type or curve is not accepted" },
  PKI_CSR_MALFORMED: { status: 400, title: "The CSR is not a valid PKCS#10 request" },
  PKI_CSR_SIGNATURE_ALGORITHM: { status: 400, title: "The CSR's signature algorithm is not accepted" },
  PKI_CSR_SIGNATURE_INVALID: { status: 400, title: "The CSR's signature does not verify" },
  PKI_CSR_SUBJECT_MISMATCH: { status: 400, title: "The CSR names a different device" },
  PKI_CSR_TOO_LARGE: { status: 413, title: "The CSR is over 64 KiB" },
  PKI_CSR_WEAK_KEY: { status: 400, title: "The CSR's key is too weak" },
  PKI_DEVICE_NOT_ELIGIBLE: { status: 409, title: "The device's status does not allow a certificate" },
  PKI_DURATION_INVALID: { status: 400, title: "A duration is not valid" },
  PKI_ENROLL_AUTH_REQUIRED: { status: 401, title: "EST enrollment needs a token or a client certificate" },
  PKI_ENROLL_TOKEN_EXPIRED: { status: 401, title: "The enrollment token has expired" },
  PKI_ENROLL_TOKEN_INVALID: { status: 401, title: "The enrollment token is unknown" },
  PKI_ENROLL_TOKEN_USED: { status: 401, title: "The enrollment token was already used" },
  PKI_HOSTNAME_INVALID: { status: 400, title: "A host name is not a DNS name or IP address" },
  PKI_KEY_OUTPUT_EXISTS: { status: 409, title: "The key output file already exists" },
  PKI_MANUFACTURER_CA_INVALID: { status: 400, title: "The manufacturer CA certificate is not acceptable" },
  PKI_MANUFACTURER_CERT_UNTRUSTED: { status: 401, title: "The client certificate is not from a trusted manufacturer CA" },
  PKI_OCSP_MALFORMED: { status: 400, title: "The OCSP request is malformed" },
  PKI_PASSPHRASE_INVALID: { status: 400, title: "The passphrase file is empty or too short" },
  PKI_REENROLL_CERT_EXPIRED: { status: 403, title: "The client certificate has expired" },
  PKI_REENROLL_CERT_REVOKED: { status: 403, title: "The client certificate is revoked or superseded" },
  PKI_REENROLL_CERT_SUPERSEDED: { status: 403, title: "The client certificate was replaced by a newer one" },
  PKI_REENROLL_CERT_UNKNOWN: { status: 403, title: "The client certificate was not issued by this CA" },
  PKI_REENROLL_DEVICE_MISMATCH: { status: 403, title: "The client certificate belongs to another device" },
  PKI_REVOCATION_REASON_INVALID: { status: 400, title: "Unknown revocation reason" },
  PKI_ROOT_KEY_OFFLINE: { status: 409, title: "The root CA key is offline" },
  PKI_SERIAL_COLLISION: { status: 500, title: "No unique serial number could be drawn" },
  PKI_SERIAL_INVALID: { status: 400, title: "The serial number is not hex" },
  PKI_TRUST_DOMAIN_INVALID: { status: 400, title: "The trust domain is not a lower-case DNS-style name" },
  PKI_VALIDITY_INVALID: { status: 400, title: "The requested validity is outside what the profile allows" },
  // --- policy ---
  POLICY_RULE_INVALID: { status: 400, title: "A policy rule is malformed" },
  POLICY_TOPIC_INVALID: { status: 400, title: "The topic or topic filter is not valid MQTT" },
  ROLE_ASSIGNMENT_NOT_FOUND: { status: 404, title: "No such role assignment" },
  ROLE_BUILTIN: { status: 409, title: "Built-in roles cannot be changed or deleted" },
  ROLE_EXISTS: { status: 409, title: "A role with this name already exists" },
  ROLE_IN_USE: { status: 409, title: "The role is still a device's or token's registry role" },
  ROLE_NAME_INVALID: { status: 400, title: "The role name is not valid" },
  ROLE_NOT_FOUND: { status: 404, title: "No such role" },
  // --- broker ---
  BROKER_CLOSED: { status: 503, title: "The MQTT broker is closed" },
  BROKER_KEY_EXISTS: { status: 409, title: "The device already has this public key" },
  BROKER_KEY_INVALID: { status: 400, title: "The public key cannot be read" },
  BROKER_KEY_NOT_FOUND: { status: 404, title: "The device has no such public key" },
  BROKER_KEY_UNSUPPORTED: { status: 400, title: "The key type cannot sign device tokens" },
  BROKER_REDIS_UNREACHABLE: { status: 503, title: "Redis for broker scale-out cannot be reached" },
  BROKER_TLS_MATERIAL_INVALID: { status: 500, title: "The broker's server certificate, key or CA bundle is unusable" },
  BROKER_TOPIC_INVALID: { status: 400, title: "The broker cannot publish to this topic" },
  // --- mosquitto data plane ---
  MOSQUITTO_ADMIN_FAILED: { status: 502, title: "Mosquitto's control channel failed or refused a command" },
  MOSQUITTO_DIR_NOT_OURS: { status: 409, title: "The directory was not created by moat mosquitto setup" },
  MOSQUITTO_NOT_FOUND: { status: 500, title: "Mosquitto or its dynamic-security plugin is not installed" },
  MOSQUITTO_NOT_SET_UP: { status: 400, title: "No Mosquitto directory set up for this installation" },
  MOSQUITTO_PORT_MISMATCH: { status: 400, title: "The MQTT port differs from the one moat mosquitto setup wrote" },
  MOSQUITTO_START_FAILED: { status: 503, title: "Mosquitto did not start" },
  // --- crypto / data protection ---
  CANONICAL_JSON_INVALID: { status: 400, title: "The value has no canonical JSON form" },
  COSE_ALG_UNSUPPORTED: { status: 400, title: "The COSE algorithm is not on the allow-list" },
  COSE_DECRYPT_FAILED: { status: 400, title: "The COSE message failed authentication (tampered)" },
  COSE_KID_UNKNOWN: { status: 400, title: "No key has the COSE message's key id" },
  COSE_MALFORMED: { status: 400, title: "The COSE message is malformed" },
  COSE_REPLAYED: { status: 409, title: "The message's sequence number was already seen or is too old" },
  COSE_REPLAY_STATE_INVALID: { status: 500, title: "The saved replay state cannot be read" },
  COSE_SEQUENCE_MISSING: { status: 400, title: "The COSE message carries no sequence number" },
  COSE_SIGNATURE_INVALID: { status: 400, title: "The COSE signature does not verify" },
  COSE_TOPIC_MISMATCH: { status: 400, title: "The COSE message was sealed for a different topic" },
  CRYPTO_KEY_INVALID: { status: 400, title: "A key is of the wrong type, curve or length" },
  DATA_RECORD_MALFORMED: { status: 400, title: "A decrypted record is not a valid JSON record" },
  KEK_ROTATION_IN_PROGRESS: { status: 409, title: "Another KEK rotation is running" },
  KEK_VERSION_IN_USE: { status: 409, title: "The KEK version still wraps data keys" },
  PKCS11_KEY_NOT_FOUND: { status: 500, title: "The key is not in the PKCS#11 token" },
  PKCS11_LOGIN_FAILED: { status: 500, title: "The PKCS#11 token refused the PIN" },
  PKCS11_MODULE_FAILED: { status: 500, title: "The PKCS#11 module could not be loaded" },
  PKCS11_OPERATION_FAILED: { status: 500, title: "A PKCS#11 operation failed" },
  PKCS11_PIN_MISSING: { status: 500, title: "No PIN source is configured for the PKCS#11 token" },
  PKCS11_TOKEN_NOT_FOUND: { status: 500, title: "No PKCS#11 token matches the configured slot or label" },
  // --- firmware / ota ---
  FIRMWARE_ALGORITHM_UNSUPPORTED: { status: 400, title: "The signature algorithm is not on the firmware allow-list" },
  FIRMWARE_CONSTRAINT_UNMET: { status: 422, title: "A manifest install constraint is not met" },
  FIRMWARE_COUNTER_INVALID: { status: 500, title: "The persisted security counter is unreadable or would move down" },
  FIRMWARE_DIGEST_MISMATCH: { status: 422, title: "The image digest does not match the manifest" },
  FIRMWARE_HARDWARE_MISMATCH: { status: 422, title: "The manifest is for another hardware id" },
  FIRMWARE_KEY_EXISTS: { status: 409, title: "A firmware signing key with this name already exists" },
  FIRMWARE_KEY_EXPIRED: { status: 422, title: "The signing-key certificate is outside its validity window" },
  FIRMWARE_KEY_MALFORMED: { status: 400, title: "A firmware key or key certificate is malformed" },
  FIRMWARE_KEY_NOT_FOUND: { status: 404, title: "No such firmware signing key" },
  FIRMWARE_KEY_REVOKED: { status: 422, title: "The signing key is revoked" },
  FIRMWARE_KEY_UNTRUSTED: { status: 422, title: "The signing key is not certified by a pinned root key" },
  FIRMWARE_LEGACY_MISMATCH: { status: 422, title: "Legacy check failed: hash or HMAC does not match" },
  FIRMWARE_MANIFEST_MALFORMED: { status: 400, title: "The firmware manifest is malformed" },
  FIRMWARE_MANIFEST_UNKNOWN_CRITICAL: { status: 422, title: "The manifest carries a critical field this verifier does not know" },
  FIRMWARE_PATH_INVALID: { status: 400, title: "A firmware target path is not a safe relative path" },
  FIRMWARE_REVOCATION_LIST_INVALID: { status: 422, title: "The signing-key revocation list is invalid or older than one seen" },
  FIRMWARE_ROLLBACK: { status: 422, title: "The security version is below the device's counter" },
  FIRMWARE_SIGNATURE_INVALID: { status: 422, title: "A manifest signature does not verify" },
  FIRMWARE_SIZE_MISMATCH: { status: 422, title: "The image size does not match the manifest" },
  OTA_CAMPAIGN_NOT_FOUND: { status: 404, title: "No such OTA campaign" },
  OTA_CAMPAIGN_TRANSITION: { status: 409, title: "That campaign state change is not allowed" },
  OTA_DEVICE_NOT_IN_CAMPAIGN: { status: 409, title: "The device is not in an open stage of this campaign" },
  OTA_FAILURE_RATE_INVALID: { status: 400, title: "The maximum failure rate is not a percentage between 0 and 100" },
  OTA_GROUP_EMPTY: { status: 422, title: "The target group has no devices" },
  OTA_INSTALL_FAILED: { status: 500, title: "The update could not be written to the inactive slot" },
  OTA_SLOT_STATE_INVALID: { status: 500, title: "The A/B slot state file is unreadable" },
  OTA_STAGES_INVALID: { status: 400, title: "Stages must be increasing percentages ending at 100" },
  OTA_STATUS_INVALID: { status: 400, title: "The device status report is not one the campaign knows" },
  TUF_METADATA_INVALID: { status: 500, title: "The TUF repository metadata on disk is invalid" },
  TUF_REPOSITORY_EXISTS: { status: 409, title: "The TUF repository is already initialised" },
  TUF_REPOSITORY_NOT_INITIALIZED: { status: 409, title: "The TUF repository has not been initialised" },
  TUF_TARGET_EXISTS: { status: 409, title: "A TUF target with this path already exists with other content" },
  TUF_THRESHOLD_INVALID: { status: 400, title: "The TUF key threshold cannot be met by the keys given" },
  TUF_UPDATE_FAILED: { status: 502, title: "The TUF update was refused (metadata or target failed verification)" },
  // --- network segmentation ---
  NETWORK_FILE_ACCESS: { status: 400, title: "A policy, MUD, inventory or output file cannot be read or written" },
  NETWORK_FLOW_INVALID: { status: 400, title: "The flow to check is not valid" },
  NETWORK_INVENTORY_INVALID: { status: 400, title: "The device inventory is malformed" },
  NETWORK_MUD_INVALID: { status: 400, title: "The MUD file is malformed" },
  NETWORK_POLICY_INVALID: { status: 400, title: "The segmentation policy has errors" },
  NETWORK_TARGET_UNSUPPORTED: { status: 400, title: "The compilation target is not supported" },
  NETWORK_VLAN_NOT_FOUND: { status: 404, title: "No VLAN has that name" },
  // --- scanner ---
  SCAN_ALLOW_INVALID: { status: 400, title: "An allowed-scope entry is not a CIDR block" },
  SCAN_CIDR_TOO_LARGE: { status: 400, title: "A target block is larger than a /16" },
  SCAN_NOT_FOUND: { status: 404, title: "No such scan run" },
  SCAN_OPTIONS_INVALID: { status: 400, title: "A scan option is out of range" },
  SCAN_PORTS_INVALID: { status: 400, title: "The port list is malformed" },
  SCAN_TARGET_INVALID: { status: 400, title: "A target is not an IP address, host name or CIDR block" },
  SCAN_TARGET_OUT_OF_SCOPE: { status: 403, title: "A target is outside the allowed scan scope" },
  SCAN_TARGET_UNRESOLVED: { status: 400, title: "A target host name does not resolve" },
  // --- respond: playbooks, notifications, incidents ---
  INCIDENT_CLOSED: { status: 409, title: "The incident is already closed" },
  INCIDENT_INVALID: { status: 400, title: "The incident's title, alerts, severity or resolution is not valid" },
  INCIDENT_NOT_FOUND: { status: 404, title: "No such incident" },
  NOTIFY_DELIVERY_NOT_DEAD: { status: 409, title: "Only a dead-letter delivery can be redelivered" },
  NOTIFY_DELIVERY_NOT_FOUND: { status: 404, title: "No such notification delivery" },
  NOTIFY_SECRET_INVALID: { status: 400, title: "The webhook secret is not whsec_ followed by base64" },
  NOTIFY_TARGET_EXISTS: { status: 409, title: "A notification target with this name exists" },
  NOTIFY_TARGET_INVALID: { status: 400, title: "The notification target's settings are not valid" },
  NOTIFY_TARGET_NOT_FOUND: { status: 404, title: "No such notification target" },
  NOTIFY_TARGET_UNAVAILABLE: { status: 503, title: "The notification target cannot be reached from this process" },
  PLAYBOOK_INVALID: { status: 400, title: "The playbook is not valid" },
  PLAYBOOK_NOT_FOUND: { status: 404, title: "No such playbook" },
  RESPOND_ACTION_NOT_FOUND: { status: 404, title: "No such response action" },
  RESPOND_UNDO_IRREVERSIBLE: { status: 409, title: "The action cannot be undone (revocation, sent notification)" },
  RESPOND_UNDO_NOT_APPLICABLE: { status: 409, title: "Only a done action can be undone" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface MoatErrorOptions {
  /** Overrides the table's HTTP status (rarely needed). */
  status?: number;
  cause?: unknown;
  /** Structured, non-secret detail for problem+json and `--json` output. */
  detail?: Record<string, unknown>;
}

/** The one error type Moat's domains throw. Callers switch on `code`, never on the message. */
export class MoatError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: MoatErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MoatError";
    this.code = code;
    this.status = options.status ?? ERROR_CODES[code].status;
    this.detail = options.detail;
  }
}

export function isMoatError(value: unknown, code?: ErrorCode): value is MoatError {
  return value instanceof MoatError && (code === undefined || value.code === code);
}
