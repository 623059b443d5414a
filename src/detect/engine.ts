/**
 * The detection engine: feeds security events and broker traffic into the metric store, evaluates
 * the rules and hands what fires to its alert sink. It owns no I/O and reads time only from its
 * clock, so a recorded event stream replays on a simulated clock exactly as it ran live
 * (`moat detect rules test`, the quality bench). Lookups it needs (a device's group, the group
 * settings, the firmware inventory) arrive through ports and are cached.
 */
import { cidrContains, formatCidr, parseCidr, parseIp, type CidrBlock } from "../lib/ip-address.js";
import type { Severity } from "../audit/index.js";
import { MetricStore, WINDOW_MS, hash32, type WindowName } from "./metric-store.js";
import type { CredentialStuffingRule, EventRule, Rule, ThresholdMetric, ThresholdRule } from "./rules.js";

/** A security event as the raw stream carries it (or as the audit log stored it, with its time). */
export interface DetectionEvent {
  type: string;
  severity?: Severity;
  actor?: string;
  subject?: string;
  data?: Record<string, unknown>;
  time?: string;
}

export type AlertSubject = { kind: "device" | "address-range"; id: string };

/** One piece of evidence: a triggering event, or the measurement that crossed the threshold. */
export type Evidence =
  | { kind: "event"; time: string; type: string; actor?: string; subject?: string; data?: Record<string, unknown> }
  | { kind: "metric"; time: string; metric: string; window: string; value: number; threshold: number; baseline: number | null };

/** What the engine hands the alert sink when a rule fires. */
export interface AlertSignal {
  rule: string;
  severity: Severity;
  subject: AlertSubject;
  evidence: Evidence[];
  defaultActions: string[];
  at: number;
}

/** The group settings detection reads (the identity domain's, through the composition root). */
export interface DetectGroupSettings {
  group: string;
  allowedCidrs: string[] | null;
  minSecurityVersion: number | null;
}

export interface DetectionPorts {
  /** A device's group (null: no group); null for an unknown device. */
  deviceGroup(deviceId: string): Promise<string | null | undefined>;
  /** Every group's settings. */
  groupSettings(): Promise<DetectGroupSettings[]>;
  /** The security version the device last reported, or null before its first report. */
  firmwareSecurityVersion(deviceId: string): Promise<number | null>;
}

export interface EngineOptions {
  rules: readonly Rule[];
  ports: DetectionPorts;
  onAlert: (signal: AlertSignal) => void;
  now?: () => number;
  /** Where a failed lookup is reported (the server's logger). */
  onError?: (error: unknown) => void;
  metrics?: MetricStore;
}

/** A device needs this much history before its own baseline counts (until then its group's). */
export const BASELINE_HISTORY_MS = 10 * 60_000;
const MAX_RULE_STATES = 200_000;
const MAX_RANGES = 10_000;
const MAX_EVIDENCE_EVENTS = 10;
const EVIDENCE_TYPES = new Set(["auth.failed", "acl.denied"]);
const MAX_EVIDENCE_SUBJECTS = 20_000;
/** A firing event rule counts again at most this often for one subject (its count is "times raised"). */
const EVENT_RERAISE_MS = 5_000;
const SIZE_BASELINE_ALPHA = 1 / 600;

interface RuleState {
  breaches: number;
  oks: number;
  firing: boolean;
  lastSecond: number;
}

interface RangeState {
  /** Failures per second over the last 60 s (ring by second). */
  perSecond: Uint16Array;
  newest: number;
  clientIds: Map<number, number>;
  evidence: Evidence[];
}

interface GroupStats {
  /** Mean baseline per metric of the group's devices with enough history. */
  baselines: Map<string, number>;
  /** Percentile per threshold rule name. */
  percentiles: Map<string, number>;
}

function eventTime(event: DetectionEvent, now: number): string {
  return typeof event.time === "string" ? event.time : new Date(now).toISOString();
}

function asEvidence(event: DetectionEvent, now: number): Evidence {
  return { kind: "event", time: eventTime(event, now), type: event.type, ...(event.actor ? { actor: event.actor } : {}), ...(event.subject ? { subject: event.subject } : {}), ...(event.data ? { data: event.data } : {}) };
}

/** The /24 (or /64, per rule) an address belongs to, as a CIDR string; null when it is not an address. */
export function rangeOf(address: string, ipv4Prefix: number, ipv6Prefix: number): string | null {
  const ip = parseIp(address);
  if (!ip) return null;
  const block = parseCidr(`${address}/${ip.family === 4 && !address.includes(":") ? ipv4Prefix : ip.family === 4 ? 96 + ipv4Prefix : ipv6Prefix}`);
  return block ? formatCidr(block) : null;
}

export class DetectionEngine {
  readonly metrics: MetricStore;
  private rules: Rule[] = [];
  private byMetric = new Map<ThresholdMetric, ThresholdRule[]>();
  private readonly states = new Map<string, RuleState>();
  private readonly ranges = new Map<string, RangeState>();
  private readonly recent = new Map<string, Evidence[]>();
  private readonly lastRaised = new Map<string, number>();
  /** The second each device's size rules were last evaluated. */
  private readonly sizeChecked = new Map<string, number>();
  private readonly groups = new Map<string, { allowed: CidrBlock[] | null; minSecurityVersion: number | null }>();
  private readonly knownDevices = new Set<string>();
  private groupStats = new Map<string, GroupStats>();
  private readonly pending = new Set<Promise<unknown>>();
  private readonly now: () => number;
  private lastTickSecond = 0;
  private lastStatsAt = 0;

  constructor(private readonly options: EngineOptions) {
    this.now = options.now ?? Date.now;
    this.metrics = options.metrics ?? new MetricStore();
    this.setRules(options.rules);
  }

  /** Replaces the rules in force (a changed rule starts from a clean state). */
  setRules(rules: readonly Rule[]): void {
    this.rules = rules.filter((r) => r.enabled);
    this.byMetric = new Map();
    for (const rule of this.rules)
      if (rule.kind === "threshold") {
        const list = this.byMetric.get(rule.metric) ?? [];
        list.push(rule);
        this.byMetric.set(rule.metric, list);
        // sizeP* rules are evaluated on publishes.
        if (rule.metric.startsWith("size")) this.byMetric.set("messagesSent", [...(this.byMetric.get("messagesSent") ?? []).filter((r) => r !== rule), rule]);
      }
    this.states.clear();
  }

  activeRules(): readonly Rule[] {
    return this.rules;
  }

  /** Loads the group settings (at start and on every `group.settings` feed row). */
  async reloadGroups(): Promise<void> {
    const settings = await this.options.ports.groupSettings();
    this.groups.clear();
    for (const s of settings) {
      const allowed = s.allowedCidrs ? s.allowedCidrs.map((c) => parseCidr(c)).filter((c): c is CidrBlock => c !== null) : null;
      this.groups.set(s.group, { allowed, minSecurityVersion: s.minSecurityVersion });
    }
  }

  /** Forgets a device's cached group (after a `device.updated` row), so the next event looks it up again. */
  forgetDevice(deviceId: string): void {
    this.knownDevices.delete(deviceId);
  }

  /** Waits for the lookups started by earlier events (a replay calls this after each event). */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private track<T>(promise: Promise<T>): void {
    const tracked = promise.catch((error: unknown) => this.options.onError?.(error));
    this.pending.add(tracked);
    void tracked.finally(() => this.pending.delete(tracked));
  }

  private async ensureGroup(deviceId: string, now: number): Promise<string | null> {
    if (this.knownDevices.has(deviceId)) return this.metrics.groupOf(deviceId);
    const group = await this.options.ports.deviceGroup(deviceId);
    this.knownDevices.add(deviceId);
    this.metrics.setGroup(deviceId, group ?? null, now);
    return group ?? null;
  }

  // --- traffic (the broker's port; the hot path) ---

  published(deviceId: string, bytes: number): void {
    const now = this.now();
    this.metrics.published(deviceId, bytes, now);
    this.evaluateMetric("messagesSent", deviceId, now);
  }

  delivered(deviceId: string): void {
    const now = this.now();
    this.metrics.delivered(deviceId, now);
    this.evaluateMetric("messagesReceived", deviceId, now);
  }

  // --- security events ---

  /** One event of the raw stream. Events detection raises itself (`alert.*`) are ignored. */
  ingest(event: DetectionEvent): void {
    if (event.type.startsWith("alert.")) return;
    const now = this.now();
    this.tick(now);
    const data = event.data ?? {};
    const device = typeof event.subject === "string" && event.subject !== "" ? event.subject : null;
    if (EVIDENCE_TYPES.has(event.type) && device) this.remember(device, event, now);
    switch (event.type) {
      case "device.connected":
        if (!device) break;
        if (!this.knownDevices.has(device)) this.track(this.ensureGroup(device, now));
        this.metrics.addNarrow(device, "connectAttempts", now);
        if (typeof data.address === "string") this.metrics.sawAddress(device, data.address, now);
        this.evaluateMetric("connectAttempts", device, now);
        this.evaluateMetric("sourceAddresses", device, now);
        this.track(this.checkConnection(device, event, now));
        break;
      case "device.disconnected":
        if (!device) break;
        this.metrics.addNarrow(device, "disconnects", now);
        this.evaluateMetric("disconnects", device, now);
        break;
      case "auth.failed":
        this.authFailed(event, device, now);
        break;
      case "acl.denied":
        if (!device || (data.action !== "publish" && data.action !== "subscribe")) break;
        this.metrics.deniedTopic(device, String(data.topic ?? ""), now);
        this.evaluateMetric("deniedPublishes", device, now);
        this.evaluateMetric("deniedTopics", device, now);
        break;
      case "device.updated":
        if (device) this.forgetDevice(device);
        break;
    }
    for (const rule of this.rules) if (rule.kind === "event" && rule.eventType === event.type) this.eventRule(rule, event, now);
  }

  private authFailed(event: DetectionEvent, device: string | null, now: number): void {
    const data = event.data ?? {};
    // A banned source is refused before its credentials are looked at: that is the ban working, not a new attempt.
    if (data.reason === "banned") return;
    // Only devices already seen connecting get per-device counts: a guessed client id must not make a
    // metric slot (the state stays bounded by the fleet, not by what outsiders type).
    if (device && this.metrics.has(device)) {
      this.metrics.addNarrow(device, "authFailures", now);
      this.metrics.addNarrow(device, "connectFailures", now);
      this.metrics.addNarrow(device, "connectAttempts", now);
      for (const metric of ["authFailures", "connectFailures", "connectAttempts"] as const) this.evaluateMetric(metric, device, now);
    }
    if (typeof data.address === "string") for (const rule of this.rules) if (rule.kind === "credential-stuffing") this.stuffing(rule, event, data.address, now);
  }

  private remember(subject: string, event: DetectionEvent, now: number): void {
    let list = this.recent.get(subject);
    if (!list) {
      if (this.recent.size >= MAX_EVIDENCE_SUBJECTS) this.recent.delete(this.recent.keys().next().value!);
      this.recent.set(subject, (list = []));
    }
    list.push(asEvidence(event, now));
    if (list.length > MAX_EVIDENCE_EVENTS) list.shift();
  }

  // --- rules ---

  private fire(rule: Rule, subject: AlertSubject, evidence: Evidence[], now: number): void {
    this.options.onAlert({ rule: rule.name, severity: rule.severity, subject, evidence, defaultActions: rule.defaultActions, at: now });
  }

  private eventRule(rule: EventRule, event: DetectionEvent, now: number): void {
    const data = event.data ?? {};
    for (const [field, values] of Object.entries(rule.match)) if (!values.includes(String(data[field]))) return;
    const id = String(data.deviceId ?? event.subject ?? "");
    if (!id) return;
    const key = `${rule.name}|${id}`;
    // `consecutive` matching events within the re-raise window before the first alert.
    const state = this.states.get(key) ?? { breaches: 0, oks: 0, firing: false, lastSecond: 0 };
    state.breaches++;
    this.states.set(key, state);
    if (state.breaches < rule.consecutive) return;
    const last = this.lastRaised.get(key);
    if (last !== undefined && now - last < EVENT_RERAISE_MS) return;
    this.lastRaised.set(key, now);
    this.fire(rule, { kind: "device", id }, [asEvidence(event, now)], now);
  }

  private stuffing(rule: CredentialStuffingRule, event: DetectionEvent, address: string, now: number): void {
    const range = rangeOf(address, rule.ipv4Prefix, rule.ipv6Prefix);
    if (!range) return;
    const second = Math.floor(now / 1000);
    let state = this.ranges.get(range);
    if (state) this.ranges.delete(range);
    else {
      if (this.ranges.size >= MAX_RANGES) this.ranges.delete(this.ranges.keys().next().value!);
      state = { perSecond: new Uint16Array(60), newest: second, clientIds: new Map(), evidence: [] };
    }
    // Keep the most recently active ranges at the end (eviction takes the oldest).
    this.ranges.set(range, state);
    for (let s = Math.max(state.newest + 1, second - 59); s <= second; s++) state.perSecond[s % 60] = 0;
    state.newest = Math.max(state.newest, second);
    if (state.perSecond[second % 60]! < 0xffff) state.perSecond[second % 60]!++;
    const windowSeconds = WINDOW_MS[rule.window] / 1000;
    const clientId = typeof event.data?.clientId === "string" ? event.data.clientId : (event.subject ?? "");
    if (clientId) {
      state.clientIds.set(hash32(clientId), second);
      if (state.clientIds.size > 64) state.clientIds.delete(state.clientIds.keys().next().value!);
    }
    state.evidence.push(asEvidence(event, now));
    if (state.evidence.length > MAX_EVIDENCE_EVENTS) state.evidence.shift();
    let failures = 0;
    for (let s = second - windowSeconds + 1; s <= second; s++) if (s > state.newest - 60) failures += state.perSecond[((s % 60) + 60) % 60]!;
    let ids = 0;
    for (const seen of state.clientIds.values()) if (seen > second - windowSeconds) ids++;
    const key = `${rule.name}|${range}`;
    if (failures >= rule.failures && ids >= rule.clientIds) {
      const last = this.lastRaised.get(key);
      if (last !== undefined && now - last < EVENT_RERAISE_MS) return;
      this.lastRaised.set(key, now);
      this.fire(rule, { kind: "address-range", id: range }, [...state.evidence], now);
    }
  }

  /** Connection-time rules that need the group's settings and the firmware inventory. */
  private async checkConnection(deviceId: string, event: DetectionEvent, now: number): Promise<void> {
    const group = await this.ensureGroup(deviceId, now);
    if (group === null) return;
    const settings = this.groups.get(group);
    if (!settings) return;
    for (const rule of this.rules) {
      if (rule.kind === "source-network" && settings.allowed) {
        const address = typeof event.data?.address === "string" ? parseIp(event.data.address) : null;
        if (address && !settings.allowed.some((block) => cidrContains(block, address))) this.fire(rule, { kind: "device", id: deviceId }, [asEvidence(event, now)], now);
      }
      if (rule.kind === "firmware-minimum" && settings.minSecurityVersion !== null) {
        const version = await this.options.ports.firmwareSecurityVersion(deviceId);
        // A device that has not reported its firmware is left out (docs/detect.md).
        if (version !== null && version < settings.minSecurityVersion)
          this.fire(rule, { kind: "device", id: deviceId }, [asEvidence(event, now), { kind: "metric", time: new Date(now).toISOString(), metric: "securityVersion", window: "reported", value: version, threshold: settings.minSecurityVersion, baseline: null }], now);
      }
    }
  }

  private value(metric: ThresholdMetric, deviceId: string, window: WindowName, now: number): number | null {
    switch (metric) {
      case "deniedTopics":
        return this.metrics.distinctDenied(deviceId, window, now);
      case "sourceAddresses":
        return this.metrics.distinctAddresses(deviceId, window, now);
      case "sizeP50":
        return this.metrics.sizeQuantile(deviceId, window, 0.5, now);
      case "sizeP90":
        return this.metrics.sizeQuantile(deviceId, window, 0.9, now);
      case "sizeP99":
        return this.metrics.sizeQuantile(deviceId, window, 0.99, now);
      default:
        return this.metrics.counter(deviceId, metric, window, now);
    }
  }

  /** The device's own baseline for the rule's metric and window; its group's until it has 10 min of history. */
  private baseline(rule: ThresholdRule, deviceId: string, now: number): number | null {
    const own = rule.metric === "messagesSent" ? this.metrics.rateBaseline(deviceId) * (WINDOW_MS[rule.window] / 10_000) : this.metrics.sizeBaseline(deviceId);
    if (this.metrics.historyMs(deviceId, now) >= BASELINE_HISTORY_MS) return own;
    const group = this.metrics.groupOf(deviceId);
    const mean = group === null ? undefined : this.groupStats.get(group)?.baselines.get(rule.name);
    return mean === undefined ? null : mean;
  }

  private evaluateMetric(metric: ThresholdMetric, deviceId: string, now: number): void {
    const rules = this.byMetric.get(metric);
    if (!rules) return;
    // Every update is evaluated (a window sum is a few additions); breaching data points are counted per
    // second. A size quantile costs more, so a size rule looks at most once a second per device.
    for (const rule of rules) {
      if (rule.metric.startsWith("size") && !this.states.has(`${rule.name}|${deviceId}`)) {
        const second = Math.floor(now / 1000);
        if (this.sizeChecked.get(deviceId) === second) continue;
        this.sizeChecked.set(deviceId, second);
      }
      this.evaluate(rule, deviceId, now);
    }
  }

  private evaluate(rule: ThresholdRule, deviceId: string, now: number): void {
    const second = Math.floor(now / 1000);
    let value = this.value(rule.metric, deviceId, rule.window, now) ?? 0;
    const sizeRule = rule.metric.startsWith("size");
    if (sizeRule && rule.minMessages !== undefined && this.metrics.counter(deviceId, "messagesSent", rule.window, now) < rule.minMessages) value = 0;
    let threshold = rule.static;
    const baseline = rule.baseline ? this.baseline(rule, deviceId, now) : null;
    if (rule.baseline && baseline !== null) threshold = Math.max(threshold, rule.baseline.factor * baseline);
    if (rule.groupPercentile) {
      const group = this.metrics.groupOf(deviceId);
      const pct = group === null ? undefined : this.groupStats.get(group)?.percentiles.get(rule.name);
      if (pct !== undefined) threshold = Math.max(threshold, rule.groupPercentile.factor * pct);
    }
    const breach = value >= threshold;
    const key = `${rule.name}|${deviceId}`;
    let state = this.states.get(key);
    if (!breach) {
      // The size baseline learns from what is normal only.
      if (sizeRule && value > 0 && state === undefined) this.metrics.updateSizeBaseline(deviceId, value, SIZE_BASELINE_ALPHA);
      if (!state) return;
      if (state.lastSecond === second) return;
      state.lastSecond = second;
      state.breaches = 0;
      if (!state.firing || ++state.oks >= rule.clear) this.states.delete(key);
      return;
    }
    if (!state) {
      if (this.states.size >= MAX_RULE_STATES) return;
      this.states.set(key, (state = { breaches: 0, oks: 0, firing: false, lastSecond: -1 }));
    }
    state.oks = 0;
    if (state.lastSecond !== second) {
      state.lastSecond = second;
      state.breaches++;
    }
    if (!state.firing && state.breaches >= rule.consecutive) {
      state.firing = true;
      const evidence: Evidence[] = [
        { kind: "metric", time: new Date(now).toISOString(), metric: rule.metric, window: rule.window, value, threshold, baseline: baseline === null ? null : Math.round(baseline * 100) / 100 },
        ...(this.recent.get(deviceId) ?? []),
      ];
      this.fire(rule, { kind: "device", id: deviceId }, evidence, now);
    }
  }

  /**
   * Time passing: re-evaluates rules that are breaching or firing once a second (so a device that
   * went quiet clears), and recomputes the group baselines and percentiles every 10 s. The server
   * calls it from a timer; a replay calls it through `ingest` as event time moves.
   */
  tick(now = this.now()): void {
    const second = Math.floor(now / 1000);
    if (second === this.lastTickSecond) return;
    this.lastTickSecond = second;
    for (const [key, state] of this.states) {
      const bar = key.indexOf("|");
      const rule = this.rules.find((r) => r.name === key.slice(0, bar));
      if (!rule || rule.kind !== "threshold") {
        // Event rules: their count of matching events starts over after a quiet re-raise window.
        if (state.lastSecond === 0 && rule?.kind === "event") {
          const last = this.lastRaised.get(key);
          if (last === undefined || now - last > EVENT_RERAISE_MS) this.states.delete(key);
        }
        continue;
      }
      this.evaluate(rule, key.slice(bar + 1), now);
    }
    if (now - this.lastStatsAt >= 10_000) {
      this.lastStatsAt = now;
      this.groupStats = this.computeGroupStats(now);
    }
  }

  private computeGroupStats(now: number): Map<string, GroupStats> {
    const stats = new Map<string, GroupStats>();
    const thresholdRules = this.rules.filter((r): r is ThresholdRule => r.kind === "threshold" && (r.baseline !== undefined || r.groupPercentile !== undefined));
    if (thresholdRules.length === 0) return stats;
    const values = new Map<string, { baseline: Map<string, number[]>; metric: Map<string, number[]> }>();
    for (const id of this.metrics.deviceIds()) {
      const group = this.metrics.groupOf(id);
      if (group === null) continue;
      let entry = values.get(group);
      if (!entry) values.set(group, (entry = { baseline: new Map(), metric: new Map() }));
      const mature = this.metrics.historyMs(id, now) >= BASELINE_HISTORY_MS;
      for (const rule of thresholdRules) {
        if (rule.baseline && mature) {
          const b = rule.metric === "messagesSent" ? this.metrics.rateBaseline(id) * (WINDOW_MS[rule.window] / 10_000) : this.metrics.sizeBaseline(id);
          (entry.baseline.get(rule.name) ?? entry.baseline.set(rule.name, []).get(rule.name)!).push(b);
        }
        if (rule.groupPercentile) (entry.metric.get(rule.name) ?? entry.metric.set(rule.name, []).get(rule.name)!).push(this.value(rule.metric, id, rule.window, now) ?? 0);
      }
    }
    for (const [group, entry] of values) {
      const s: GroupStats = { baselines: new Map(), percentiles: new Map() };
      for (const [name, list] of entry.baseline) if (list.length > 0) s.baselines.set(name, list.reduce((a, b) => a + b, 0) / list.length);
      for (const rule of thresholdRules) {
        const list = entry.metric.get(rule.name);
        if (!rule.groupPercentile || !list || list.length === 0) continue;
        list.sort((a, b) => a - b);
        s.percentiles.set(rule.name, list[Math.min(list.length - 1, Math.ceil((rule.groupPercentile.p / 100) * list.length) - 1)]!);
      }
      stats.set(group, s);
    }
    return stats;
  }

  /** Fleet aggregates per group over 60 s (Prometheus exports these, never one series per device). */
  groupSummaries(now = this.now()): Map<string, Record<string, number>> {
    const out = new Map<string, Record<string, number>>();
    for (const id of this.metrics.deviceIds()) {
      const group = this.metrics.groupOf(id) ?? "";
      let s = out.get(group);
      if (!s) out.set(group, (s = { devices: 0, messagesSent: 0, messagesReceived: 0, bytesSent: 0, authFailures: 0, deniedPublishes: 0, connectAttempts: 0, disconnects: 0 }));
      s.devices!++;
      for (const name of ["messagesSent", "messagesReceived", "bytesSent", "authFailures", "deniedPublishes", "connectAttempts", "disconnects"] as const)
        s[name]! += this.metrics.counter(id, name, "60s", now);
    }
    return out;
  }
}
