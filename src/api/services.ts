import type { AuditCheckpoints, AuditService, SecurityEventSink } from "../audit/index.js";
import type { Change } from "../change-feed.js";
import type { DeviceCredentialService, DeviceService, EnrollmentTokenService, FirmwareInventoryService, GroupSettingsService, TokenService } from "../identity/index.js";
import type { CaRegistry, Pki } from "../pki/index.js";
import type { PolicyService } from "../policy/index.js";
import type { FirmwareServices } from "../firmware/index.js";
import type { ScanService } from "../scanner/index.js";
import type { RespondServices } from "../respond/index.js";
import type { AlertService, DetectRuleService } from "../detect/index.js";
import type { SessionService } from "../sessions/index.js";
import type { PostureService } from "../posture/index.js";
import type { ComplianceService } from "../compliance/index.js";
import type { AuditKeys } from "../audit/index.js";

/** What the API needs from the application (core.ts's App satisfies it). The API holds no business logic. */
export interface ApiServices {
  readonly devices: DeviceService;
  /** Per-group settings. */
  readonly groups: GroupSettingsService;
  /** The firmware each device last reported running. */
  readonly firmwareInventory: FirmwareInventoryService;
  readonly tokens: TokenService;
  /** Device JWT keys and HMAC secrets (the API shows their ids, never their material). */
  readonly deviceCredentials: DeviceCredentialService;
  /** One-time EST enrollment tokens. */
  readonly enrollmentTokens: EnrollmentTokenService;
  readonly audit: AuditService;
  /** Signed checkpoints of the audit log (the dashboard shows the last one). */
  readonly auditCheckpoints: AuditCheckpoints;
  /** Standalone events of the doors (`auth.failed` is aggregated per source on its way to the log). */
  readonly securityEvents: SecurityEventSink;
  readonly ca: CaRegistry;
  /** The change feed, followed by the event stream (a revoked token ends its streams). */
  readonly store: { subscribe(listener: (change: Change) => void): () => void };
  /** The installation's trust domain (device certificates name it; GET /v1/info advertises it). */
  readonly trustDomain: string;
  /** True when the database answers. */
  ready(): Promise<boolean>;
  /** Extra Prometheus exposition text from other components (broker, PKI, …). */
  readonly metricsSources: (() => Promise<string> | string)[];
  // --- services added by domains (pki, policy, broker, keys, firmware, scanner) ---
  /** Device certificates, CRL, OCSP and EST enrollment. */
  readonly pki: Pki;
  /** Roles, assignments, the policy simulator and lint. */
  readonly policy: PolicyService;
  /** Firmware keys, TUF repository and OTA campaigns. */
  readonly firmware: FirmwareServices;
  /** Scan runs and their findings. */
  readonly scans: ScanService;
  /** Detection's alerts. */
  readonly alerts: AlertService;
  /** Detection rules in force. */
  readonly detectRules: DetectRuleService;
  /** Live MQTT sessions and client-id takeovers. */
  readonly sessions: SessionService;
  /** Playbooks, response actions and their undo, notification targets, incidents. */
  readonly respond: RespondServices;
  /** Posture checks, their stored runs, findings and suppressions. */
  readonly posture: PostureService;
  /** Control catalogues, signed reports, attestations. */
  readonly compliance: ComplianceService;
  /** The audit key (reports are verified against its public half). */
  readonly auditKeys: Pick<AuditKeys, "verifierKey">;
}

export interface ApiSettings {
  bodyLimitBytes: number;
  authFailureLimit: number;
  authFailureWindowSeconds: number;
}
