/**
 * Detection rules: their model, the built-in set, and the YAML form operators write
 * (`moat detect rules apply FILE`). A rules file names rules; a rule with a built-in's name overrides
 * that built-in's parameters (unnamed fields keep their defaults), any other name adds a rule.
 */
import { parse as parseYaml } from "yaml";
import { MoatError } from "../errors.js";
import type { Severity } from "../audit/index.js";
import { WINDOWS, type WindowName } from "./metric-store.js";

export const SEVERITIES: readonly Severity[] = ["info", "low", "medium", "high", "critical"];
export const RULE_KINDS = ["threshold", "credential-stuffing", "source-network", "event", "firmware-minimum"] as const;
export type RuleKind = (typeof RULE_KINDS)[number];
/** Metrics a threshold rule can watch (docs/detect.md, "Metrics"). */
export const THRESHOLD_METRICS = [
  "messagesSent",
  "messagesReceived",
  "bytesSent",
  "authFailures",
  "deniedPublishes",
  "deniedTopics",
  "connectAttempts",
  "connectFailures",
  "disconnects",
  "sourceAddresses",
  "sizeP50",
  "sizeP90",
  "sizeP99",
] as const;
export type ThresholdMetric = (typeof THRESHOLD_METRICS)[number];
/** Metrics with a per-device EWMA baseline. */
export const BASELINE_METRICS: readonly ThresholdMetric[] = ["messagesSent", "sizeP50", "sizeP90", "sizeP99"];
/** Actions respond's executor knows by name; detection only records them on the rule. */
export const ACTIONS = ["alert", "ban-range", "quarantine", "revoke", "notify"] as const;

interface RuleBase {
  name: string;
  kind: RuleKind;
  description: string;
  enabled: boolean;
  severity: Severity;
  /** Consecutive breaching data points (1 s apart) before the rule fires. */
  consecutive: number;
  /** Consecutive clear data points before a firing rule may fire again. */
  clear: number;
  /** What respond does by default when this rule fires (detection itself only raises the alert). */
  defaultActions: string[];
}

export interface ThresholdRule extends RuleBase {
  kind: "threshold";
  metric: ThresholdMetric;
  window: WindowName;
  /** The static floor: the value must reach at least this. */
  static: number;
  /** And at least `factor` × the device's own EWMA baseline (the group's until 10 min of history). */
  baseline?: { factor: number };
  /** And at least `factor` × the `p`-th percentile of the device's group. */
  groupPercentile?: { p: number; factor: number };
  /** Size rules only: at least this many messages in the window for the quantile to count. */
  minMessages?: number;
}

export interface CredentialStuffingRule extends RuleBase {
  kind: "credential-stuffing";
  failures: number;
  clientIds: number;
  window: WindowName;
  ipv4Prefix: number;
  ipv6Prefix: number;
}

export interface SourceNetworkRule extends RuleBase {
  kind: "source-network";
}

export interface EventRule extends RuleBase {
  kind: "event";
  /** The security event type that counts (`auth.failed`, `ota.device.status`). */
  eventType: string;
  /** Data fields and the values that count (any of them); all fields must match. */
  match: Record<string, string[]>;
}

export interface FirmwareMinimumRule extends RuleBase {
  kind: "firmware-minimum";
}

export type Rule = ThresholdRule | CredentialStuffingRule | SourceNetworkRule | EventRule | FirmwareMinimumRule;

const base = (name: string, kind: RuleKind, severity: Severity, description: string, defaultActions: string[] = ["alert"]) => ({
  name,
  kind,
  description,
  enabled: true,
  severity,
  consecutive: 1,
  clear: 3,
  defaultActions,
});

/** The built-in rules, each on by default (docs/detect.md lists them with their parameters). */
export const BUILTIN_RULES: readonly Rule[] = [
  {
    ...base("publish-rate-burst", "threshold", "high", "a device publishes at least 10x its own 1-hour baseline and at least 20 messages in 10 s"),
    kind: "threshold",
    metric: "messagesSent",
    window: "10s",
    static: 20,
    baseline: { factor: 10 },
  },
  {
    ...base("topic-probing", "threshold", "high", "at least 5 distinct denied topic filters from one device within 60 s"),
    kind: "threshold",
    metric: "deniedTopics",
    window: "60s",
    static: 5,
  },
  {
    ...base("credential-stuffing", "credential-stuffing", "critical", "at least 20 authentication failures from one /24 (IPv6 /64) across at least 5 client ids in 60 s", ["alert", "ban-range"]),
    kind: "credential-stuffing",
    failures: 20,
    clientIds: 5,
    window: "60s",
    ipv4Prefix: 24,
    ipv6Prefix: 64,
  },
  { ...base("unexpected-source-network", "source-network", "high", "a connection from outside the CIDR set allowed for the device's group"), kind: "source-network" },
  {
    ...base("connection-flapping", "threshold", "medium", "at least 10 connects (accepted or refused) of one device in 60 s"),
    kind: "threshold",
    metric: "connectAttempts",
    window: "60s",
    static: 10,
  },
  {
    ...base("revoked-credential-use", "event", "high", "a connection with a revoked or superseded certificate, or with a rotated-out device secret"),
    kind: "event",
    eventType: "auth.failed",
    match: { reason: ["cert_revoked", "cert_not_current", "token_secret_grace_expired"] },
  },
  {
    ...base("message-size-anomaly", "threshold", "medium", "a device's 300 s p99 message size is at least 4x its own baseline p99 and at least 1 KiB"),
    kind: "threshold",
    metric: "sizeP99",
    window: "300s",
    static: 1024,
    baseline: { factor: 4 },
    minMessages: 20,
  },
  {
    ...base("firmware-rejected", "event", "medium", "a device rejected or rolled back an OTA update"),
    kind: "event",
    eventType: "ota.device.status",
    match: { status: ["failed", "rolled-back"] },
  },
  { ...base("firmware-below-minimum", "firmware-minimum", "high", "a device whose reported security version is below its group's minimum still connects"), kind: "firmware-minimum" },
];

const NAME = /^[a-z][a-z0-9-]{0,63}$/;
const EVENT_TYPE = /^[a-z][a-z0-9_.-]{0,63}$/;
const MAX_RULES = 200;

function fail(message: string, detail?: Record<string, unknown>): never {
  throw new MoatError("DETECT_RULES_INVALID", message, detail ? { detail } : {});
}

function integer(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) fail(`${what} must be an integer from ${min} to ${max}`);
  return value;
}

function positive(value: unknown, what: string, max: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > max) fail(`${what} must be a number above 0 and at most ${max}`);
  return value;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], what: string): T {
  if (typeof value !== "string" || !allowed.includes(value as T)) fail(`${what} must be one of ${allowed.join(", ")}`);
  return value as T;
}

function allowedKeys(input: Record<string, unknown>, keys: readonly string[], where: string): void {
  for (const key of Object.keys(input)) if (!keys.includes(key)) fail(`${where}: unknown field ${JSON.stringify(key)}`);
}

const COMMON = ["name", "kind", "description", "enabled", "severity", "consecutive", "clear", "defaultActions"];
const KIND_FIELDS: Record<RuleKind, string[]> = {
  threshold: ["metric", "window", "static", "baseline", "groupPercentile", "minMessages"],
  "credential-stuffing": ["failures", "clientIds", "window", "ipv4Prefix", "ipv6Prefix"],
  "source-network": [],
  event: ["eventType", "match"],
  "firmware-minimum": [],
};

/** Checks one rule (a built-in's override is merged over the built-in first). */
export function checkRule(raw: unknown, index: number): Rule {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail(`rule ${index + 1} is not a mapping`);
  const input = raw as Record<string, unknown>;
  const name = input.name;
  if (typeof name !== "string" || !NAME.test(name)) fail(`rule ${index + 1}: name must be 1-64 of a-z 0-9 - starting with a letter`);
  const builtin = BUILTIN_RULES.find((r) => r.name === name);
  const where = `rule ${name}`;
  if (builtin && input.kind !== undefined && input.kind !== builtin.kind) fail(`${where}: a built-in rule keeps its kind (${builtin.kind})`);
  const merged: Record<string, unknown> = { ...(builtin ?? { enabled: true, consecutive: 1, clear: 3, defaultActions: ["alert"], description: "" }), ...input };
  const kind = oneOf(merged.kind, RULE_KINDS, `${where}: kind`);
  allowedKeys(input, [...COMMON, ...KIND_FIELDS[kind]], where);
  if (typeof merged.enabled !== "boolean") fail(`${where}: enabled must be true or false`);
  if (typeof merged.description !== "string" || merged.description.length > 500) fail(`${where}: description must be text of at most 500 characters`);
  const actions = merged.defaultActions;
  if (!Array.isArray(actions) || actions.length === 0 || actions.length > 5) fail(`${where}: defaultActions must list 1-5 of ${ACTIONS.join(", ")}`);
  const common = {
    name,
    kind,
    description: merged.description,
    enabled: merged.enabled,
    severity: oneOf(merged.severity, SEVERITIES, `${where}: severity`),
    consecutive: integer(merged.consecutive, `${where}: consecutive`, 1, 3600),
    clear: integer(merged.clear, `${where}: clear`, 1, 3600),
    defaultActions: [...new Set(actions.map((a) => oneOf(a, ACTIONS, `${where}: defaultActions`)))],
  };
  switch (kind) {
    case "threshold": {
      const metric = oneOf(merged.metric, THRESHOLD_METRICS, `${where}: metric`);
      const rule: ThresholdRule = { ...common, kind, metric, window: oneOf(merged.window, WINDOWS, `${where}: window`), static: integer(merged.static, `${where}: static`, 1, 1_000_000_000) };
      if (merged.baseline !== undefined && merged.baseline !== null) {
        if (!BASELINE_METRICS.includes(metric)) fail(`${where}: a device baseline exists for ${BASELINE_METRICS.join(", ")} only`);
        const b = merged.baseline as Record<string, unknown>;
        if (typeof b !== "object") fail(`${where}: baseline must be { factor }`);
        allowedKeys(b, ["factor"], `${where}: baseline`);
        rule.baseline = { factor: positive(b.factor, `${where}: baseline.factor`, 10_000) };
      }
      if (merged.groupPercentile !== undefined && merged.groupPercentile !== null) {
        const g = merged.groupPercentile as Record<string, unknown>;
        if (typeof g !== "object") fail(`${where}: groupPercentile must be { p, factor }`);
        allowedKeys(g, ["p", "factor"], `${where}: groupPercentile`);
        rule.groupPercentile = { p: integer(g.p, `${where}: groupPercentile.p`, 1, 100), factor: positive(g.factor, `${where}: groupPercentile.factor`, 10_000) };
      }
      if (merged.minMessages !== undefined) rule.minMessages = integer(merged.minMessages, `${where}: minMessages`, 1, 1_000_000);
      return rule;
    }
    case "credential-stuffing":
      return {
        ...common,
        kind,
        failures: integer(merged.failures, `${where}: failures`, 1, 1_000_000),
        clientIds: integer(merged.clientIds, `${where}: clientIds`, 1, 32),
        window: oneOf(merged.window, ["10s", "60s"] as const, `${where}: window`),
        ipv4Prefix: integer(merged.ipv4Prefix, `${where}: ipv4Prefix`, 8, 32),
        ipv6Prefix: integer(merged.ipv6Prefix, `${where}: ipv6Prefix`, 16, 128),
      };
    case "event": {
      const eventType = merged.eventType;
      if (typeof eventType !== "string" || !EVENT_TYPE.test(eventType)) fail(`${where}: eventType must be a dotted event type like auth.failed`);
      if (eventType.startsWith("alert.")) fail(`${where}: a rule cannot watch alert events (it would feed on its own alerts)`);
      const match = merged.match ?? {};
      if (typeof match !== "object" || match === null || Array.isArray(match) || Object.keys(match).length > 8) fail(`${where}: match must map up to 8 data fields to lists of values`);
      const out: Record<string, string[]> = {};
      for (const [field, values] of Object.entries(match as Record<string, unknown>)) {
        if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(field)) fail(`${where}: match field ${JSON.stringify(field)} is not a data field name`);
        if (!Array.isArray(values) || values.length === 0 || values.length > 32 || values.some((v) => typeof v !== "string" || v.length > 128))
          fail(`${where}: match.${field} must list 1-32 strings`);
        out[field] = values as string[];
      }
      return { ...common, kind, eventType, match: out };
    }
    default:
      return { ...common, kind } as SourceNetworkRule | FirmwareMinimumRule;
  }
}

/** Reads a rules file (`rules: [...]`); DETECT_RULES_INVALID names the first problem. */
export function parseRulesYaml(text: string): Rule[] {
  if (text.length > 256 * 1024) fail("a rules file is at most 256 KiB");
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 50 });
  } catch (error) {
    fail(`the rules file is not valid YAML: ${(error as Error).message.split("\n")[0]}`);
  }
  if (typeof doc !== "object" || doc === null || !Array.isArray((doc as { rules?: unknown }).rules)) fail("a rules file is a mapping with a `rules` list");
  const list = (doc as { rules: unknown[] }).rules;
  if (list.length > MAX_RULES) fail(`at most ${MAX_RULES} rules`);
  const rules = list.map((raw, i) => checkRule(raw, i));
  const seen = new Set<string>();
  for (const rule of rules) {
    if (seen.has(rule.name)) fail(`rule ${rule.name} is listed twice`);
    seen.add(rule.name);
  }
  return rules;
}

/** The rules in force: every built-in (overridden where stored), then the stored custom rules. */
export function effectiveRules(stored: readonly Rule[]): Rule[] {
  const byName = new Map(stored.map((r) => [r.name, r]));
  const builtins = BUILTIN_RULES.map((r) => byName.get(r.name) ?? r);
  return [...builtins, ...stored.filter((r) => !BUILTIN_RULES.some((b) => b.name === r.name))];
}

export function isBuiltinRule(name: string): boolean {
  return BUILTIN_RULES.some((r) => r.name === name);
}
