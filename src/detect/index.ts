/**
 * Detection's door: per-device metrics over sliding windows, the rules (built-in and stored YAML), the
 * engine that evaluates them on the raw event stream and broker traffic, and the alerts it raises.
 * It reaches identity (groups, firmware inventory) and the broker (traffic) only through ports the
 * composition root wires (docs/detect.md).
 */
export { MetricStore, WINDOWS, WINDOW_MS, quantileOf, type WindowName, type WindowMetrics, type MetricSnapshot } from "./metric-store.js";
export {
  ACTIONS,
  BUILTIN_RULES,
  RULE_KINDS,
  THRESHOLD_METRICS,
  checkRule,
  effectiveRules,
  isBuiltinRule,
  parseRulesYaml,
  type Rule,
  type RuleKind,
  type ThresholdRule,
  type EventRule,
  type CredentialStuffingRule,
} from "./rules.js";
export {
  DetectionEngine,
  BASELINE_HISTORY_MS,
  rangeOf,
  type AlertSignal,
  type AlertSubject,
  type DetectGroupSettings,
  type DetectionEvent,
  type DetectionPorts,
  type Evidence,
  type EngineOptions,
} from "./engine.js";
export { AlertService, MAX_ALERT_EVIDENCE, type AlertView } from "./alerts.js";
export { DetectRuleService, type RuleView } from "./rule-service.js";
export { replayEvents, type ReplayResult } from "./replay.js";
export { MetricSnapshots, SNAPSHOT_FILE } from "./snapshots.js";
export { createDetectMetrics } from "./prometheus.js";
export {
  ALERT_STATUSES,
  type AlertStatus,
  type AlertRecord,
  type AlertFilter,
  type AlertRepository,
  type StoredRule,
  type RuleRepository,
  type DetectUnitOfWork,
  type DetectStore,
} from "./ports.js";
export { DetectionRuntime, type DetectionRuntimeOptions, type DetectionLog } from "./runtime.js";
