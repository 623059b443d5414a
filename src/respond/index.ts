/** The respond domain's door: playbooks, the response executor and its undo, notifications, incidents. */
export { ResponseExecutor, raisedAlertOf, ALERT_RAISED, ACTION_EVENT, UNDO_EVENT, RATE_CAPPED_EVENT, type RaisedAlert, type RuleDefaults, type ExecutorDeps } from "./executor.js";
export { PlaybookService } from "./playbook-service.js";
export { parsePlaybook, checkPlaybook, DEFAULT_RATE_LIMIT, PLAYBOOK_NAME, type PlaybookDefinition } from "./playbook.js";
export { Notifier, notificationOf, SEVERITIES, DEFAULT_ALERT_TOPIC_PREFIX, type NotifierOptions, type NotifyTargetView, type Notification, type AddWebhookInput, type AddSyslogInput, type AddMqttInput } from "./notifier.js";
export { generateWebhookSecret, signWebhook, verifyWebhook, webhookHeaders, SECRET_PREFIX } from "./webhook-signature.js";
export { formatSyslog, frameOctetCounted, sendSyslog, SD_ID, type SyslogTarget } from "./syslog.js";
export { IncidentService, incidentMarkdown, type IncidentReport, type TimelineEntry, type AlertSummary, type OpenIncidentInput } from "./incidents.js";
export { followBans } from "./ban-sync.js";
export {
  ACTIONS,
  type ActionFilter,
  type ActionRepository,
  type BanRepository,
  type DeliveryRepository,
  type IncidentRepository,
  type NotifyTargetRepository,
  type PlaybookRepository,
  type ActionName,
  type ActionRecord,
  type ActionStatus,
  type AlertSubject,
  type AlertTopicPublisher,
  type AuditReader,
  type BanRecord,
  type CertificateRevoker,
  type DeliveryRecord,
  type DeliveryStatus,
  type DeviceContainment,
  type IncidentRecord,
  type NotifyTargetRecord,
  type RangeBanTarget,
  type RespondStore,
  type RespondUnitOfWork,
  type StoredPlaybook,
  type TargetKind,
} from "./ports.js";

import type { Notifier } from "./notifier.js";
import type { ResponseExecutor } from "./executor.js";
import type { PlaybookService } from "./playbook-service.js";
import type { IncidentService } from "./incidents.js";

/** The respond services as the core builds them. */
export interface RespondServices {
  playbooks: PlaybookService;
  executor: ResponseExecutor;
  notifier: Notifier;
  incidents: IncidentService;
  /** Applies the active range bans to `target` and follows `ban.changed` rows (serve, per broker node). */
  followBans(target: import("./ports.js").RangeBanTarget, onError?: (error: unknown) => void): Promise<() => void>;
}
