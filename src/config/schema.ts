/**
 * Moat's one configuration schema. Sources, highest first: CLI flags > environment (MOAT_*) >
 * `moat.yaml` in the data dir > the defaults below. Validated once; the result is frozen.
 *
 * The environment name of a setting is MOAT_ + its path in upper snake case:
 * `apiPort` → MOAT_API_PORT, `broker.mqttPort` → MOAT_BROKER_MQTT_PORT.
 */
export type SettingType =
  | { kind: "string"; pattern?: RegExp; allowed?: string }
  | { kind: "int"; min: number; max: number }
  | { kind: "port"; optional?: boolean }
  | { kind: "enum"; values: readonly string[] }
  | { kind: "bool" }
  | { kind: "url"; protocols: readonly string[] }
  | { kind: "list" };

export interface SettingSpec {
  type: SettingType;
  default: unknown;
  /** Secrets are accepted only from the environment, never from flags or moat.yaml, and never printed. */
  secret?: boolean;
  description: string;
}

export const SETTINGS = {
  dataDir: { type: { kind: "string" }, default: "./moat-data", description: "Data directory (database, KEK, moat.yaml)" },
  databaseUrl: {
    type: { kind: "url", protocols: ["postgres:", "postgresql:"] },
    default: null,
    description: "PostgreSQL URL; unset means SQLite in the data dir",
  },
  redisUrl: { type: { kind: "url", protocols: ["redis:", "rediss:"] }, default: null, description: "Redis URL for broker fan-out across nodes" },
  masterKey: { type: { kind: "string" }, default: null, secret: true, description: "KEK as base64 (32 bytes) instead of the KEK file" },
  host: { type: { kind: "string" }, default: "127.0.0.1", description: "Address the listeners bind to" },
  apiPort: { type: { kind: "port" }, default: 8443, description: "HTTPS port of the REST API, EST and dashboard" },
  pkiPort: { type: { kind: "port" }, default: 8080, description: "Plain-HTTP port for CRL and OCSP (RFC 5280/6960)" },
  publicUrl: { type: { kind: "url", protocols: ["http:", "https:"] }, default: null, description: "Base URL devices use for CRL/OCSP/CA issuers; default http://127.0.0.1:<pkiPort>" },
  "api.publicUrl": { type: { kind: "url", protocols: ["https:"] }, default: null, description: "API base URL GET /v1/info advertises to devices (EST); default https://<host the request named>" },
  logLevel: { type: { kind: "enum", values: ["fatal", "error", "warn", "info", "debug", "trace", "silent"] }, default: "info", description: "Operator log level" },
  "api.bodyLimitBytes": { type: { kind: "int", min: 1024, max: 16 * 1024 * 1024 }, default: 1024 * 1024, description: "Largest accepted request body" },
  "api.authFailureLimit": { type: { kind: "int", min: 1, max: 10_000 }, default: 10, description: "Failed authentications from one address (API tokens; EST enrollments counted apart) before back-off" },
  "api.authFailureWindowSeconds": { type: { kind: "int", min: 1, max: 86_400 }, default: 60, description: "Window for counting failed authentications (API and EST)" },
  "feed.pollMs": { type: { kind: "int", min: 20, max: 60_000 }, default: 100, description: "Change-feed polling interval" },
  // --- audit ---
  "audit.checkpointMinutes": { type: { kind: "int", min: 1, max: 24 * 60 }, default: 60, description: "How often moat serve signs a checkpoint of the audit log (when it grew)" },
  "audit.witnessFile": { type: { kind: "string" }, default: null, description: "Append-only file (JSON Lines) every checkpoint is copied to; keep it off the database's storage" },
  "audit.witnessUrl": { type: { kind: "url", protocols: ["http:", "https:"] }, default: null, description: "Witness that receives every checkpoint (C2SP tlog-witness add-checkpoint)" },
  // --- pki ---
  "pki.certDays": { type: { kind: "int", min: 1, max: 3650 }, default: 90, description: "Default device certificate validity" },
  "pki.certLifetime": {
    type: { kind: "string", pattern: /^\d{1,12}[smhdw]$/, allowed: "a duration like 10m, 12h or 30d" },
    default: null,
    description: "Device certificate lifetime as a duration (10s to pki.maxCertDays, e.g. 10m for renewal tests); overrides pki.certDays",
  },
  "pki.maxCertDays": { type: { kind: "int", min: 1, max: 3650 }, default: 397, description: "Longest validity a request may ask for" },
  "pki.crlValidityHours": { type: { kind: "int", min: 1, max: 24 * 30 }, default: 24, description: "CRL nextUpdate - thisUpdate" },
  "pki.expiryWindowDays": { type: { kind: "int", min: 1, max: 365 }, default: 30, description: "Warn about certificates expiring within this window" },
  "pki.groupCertDays": { type: { kind: "list" }, default: [], description: "Per-group device certificate validity, entries group=days" },
  "pki.rotationGraceHours": { type: { kind: "int", min: 0, max: 24 * 30 }, default: 24, description: "How long a rotated-out certificate stays valid" },
  // --- broker ---
  "broker.mqttPort": { type: { kind: "port" }, default: 8883, description: "MQTT over TLS" },
  "broker.mqttPlainPort": { type: { kind: "port", optional: true }, default: null, description: "Plaintext MQTT (loopback only; insecure, flagged)" },
  "broker.mqttWssPort": { type: { kind: "port", optional: true }, default: null, description: "MQTT over secure WebSockets" },
  "broker.publicUrl": { type: { kind: "url", protocols: ["mqtts:"] }, default: null, description: "MQTT URL GET /v1/info advertises to devices; default mqtts://<host the request named>:<MQTT port>" },
  "broker.enabled": { type: { kind: "bool" }, default: true, description: "Run the MQTT broker in `moat serve`" },
  "broker.audience": { type: { kind: "string" }, default: "moat-mqtt", description: "JWT audience the broker accepts" },
  "broker.maxPayloadBytes": { type: { kind: "int", min: 16, max: 256 * 1024 * 1024 }, default: 256 * 1024, description: "Largest MQTT payload" },
  "broker.messagesPerSecond": { type: { kind: "int", min: 1, max: 1_000_000 }, default: 100, description: "Per-client publish rate limit" },
  "broker.maxPublishDenials": { type: { kind: "int", min: 1, max: 1000 }, default: 3, description: "Denied publishes before disconnect" },
  "broker.authFailureLimit": { type: { kind: "int", min: 1, max: 1000 }, default: 5, description: "Failed connects before a temporary ban" },
  "broker.banSeconds": { type: { kind: "int", min: 1, max: 86_400 }, default: 300, description: "Length of a temporary ban" },
  "broker.secretGraceSeconds": { type: { kind: "int", min: 0, max: 7 * 86_400 }, default: 3600, description: "How long a rotated HMAC secret keeps working" },
  // --- broker: the Mosquitto data plane (docs/broker.md) ---
  "broker.mode": { type: { kind: "enum", values: ["embedded", "mosquitto"] }, default: "embedded", description: "Data plane: the embedded broker, or Mosquitto run and kept in step by moat serve" },
  "broker.mosquitto.dir": { type: { kind: "string" }, default: null, description: "Directory written by moat mosquitto setup (broker.mode = mosquitto)" },
  "broker.mosquitto.bin": { type: { kind: "string" }, default: "mosquitto", description: "Mosquitto binary: a path, or a name looked up on the PATH and then in /usr/sbin" },
  // --- keys ---
  "keys.provider": { type: { kind: "enum", values: ["file", "env", "pkcs11"] }, default: "file", description: "Where the KEK lives" },
  "keys.pkcs11Module": { type: { kind: "string" }, default: null, description: "PKCS#11 module path" },
  "keys.pkcs11TokenLabel": { type: { kind: "string" }, default: null, description: "PKCS#11 token label" },
  "keys.pkcs11Slot": { type: { kind: "int", min: 0, max: 2 ** 31 }, default: null, description: "PKCS#11 slot id (instead of a label)" },
  "keys.pkcs11PinFile": { type: { kind: "string" }, default: null, description: "File holding the PKCS#11 user PIN" },
  "keys.pkcs11Pin": { type: { kind: "string" }, default: null, secret: true, description: "PKCS#11 user PIN (environment only)" },
  // --- scanner ---
  "scanner.allowedTargets": { type: { kind: "list" }, default: ["127.0.0.0/8", "::1/128"], description: "CIDRs the scanner may touch" },
  // --- firmware / ota ---
  // --- network ---
  "segmentation.policyFile": { type: { kind: "string" }, default: null, description: "The segmentation policy (YAML) the router runs; posture checks that its compiled ruleset is current" },
  "segmentation.compiledFile": { type: { kind: "string" }, default: null, description: "The nftables ruleset compiled from segmentation.policyFile and loaded on the router" },
  // --- posture and compliance ---
  "posture.intervalMinutes": { type: { kind: "int", min: 1, max: 7 * 24 * 60 }, default: 60, description: "How often moat serve runs every posture check" },
  "posture.certificateMaxAgeDays": { type: { kind: "int", min: 1, max: 3650 }, default: 365, description: "A device certificate older than this is reported (device-certificate-old)" },
  "posture.kekMaxAgeDays": { type: { kind: "int", min: 1, max: 3650 }, default: 365, description: "A KEK current for longer than this is reported (kek-not-rotated)" },
  "posture.neverSeenGraceDays": { type: { kind: "int", min: 0, max: 365 }, default: 7, description: "An active device never seen this long after it was created is reported (device-never-seen)" },
  "posture.scanMaxAgeDays": { type: { kind: "int", min: 1, max: 365 }, default: 30, description: "Scanner findings count when the newest stored scan is at most this old" },
  "compliance.supportPeriodEnd": { type: { kind: "string", pattern: /^\d{4}-\d{2}-\d{2}$/, allowed: "a date YYYY-MM-DD" }, default: null, description: "End of the security-update support period stated to buyers (PSTI Schedule 1 paragraph 3)" },
  "compliance.reportingContact": { type: { kind: "string" }, default: null, description: "Where people report security issues (URL or e-mail; PSTI Schedule 1 paragraph 2)" },
  "compliance.manufacturer": { type: { kind: "string" }, default: null, description: "Manufacturer name printed on compliance reports and the PSTI statement of compliance" },
} as const satisfies Record<string, SettingSpec>;

export type SettingPath = keyof typeof SETTINGS;
