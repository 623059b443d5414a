/**
 * Replays a recorded event stream through a fresh engine on a simulated clock: each line is one
 * security event as the audit log stores it (`{"seq","time","type","severity","actor","subject","data",…}`).
 * Publishes are not security events, so a stream may also carry `traffic.published` lines
 * (`{"time","type":"traffic.published","subject":DEVICE,"data":{"bytes":N}}`) and `traffic.delivered`
 * lines; they feed the metrics exactly as the broker's traffic port does.
 */
import { MoatError } from "../errors.js";
import { DetectionEngine, type AlertSignal, type DetectionEvent, type DetectionPorts } from "./engine.js";
import type { Rule } from "./rules.js";

export interface ReplayedAlert {
  rule: string;
  subject: AlertSignal["subject"];
  severity: AlertSignal["severity"];
  count: number;
  firstSeen: string;
  lastSeen: string;
  evidence: AlertSignal["evidence"];
}

export interface ReplayResult {
  events: number;
  /** Alerts as the store would hold them: one per rule and subject, with a count. */
  alerts: ReplayedAlert[];
  /** Every firing, in order (the bench reads the first one's time). */
  signals: AlertSignal[];
}

/** Parses one JSONL line; DETECT_EVENTS_INVALID names the line. */
export function parseEventLine(line: string, number: number): DetectionEvent & { time: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new MoatError("DETECT_EVENTS_INVALID", `line ${number} is not JSON`);
  }
  const e = value as Record<string, unknown>;
  if (typeof e !== "object" || e === null || typeof e.type !== "string" || typeof e.time !== "string" || !Number.isFinite(Date.parse(e.time)))
    throw new MoatError("DETECT_EVENTS_INVALID", `line ${number} is not a security event with a type and an ISO time`);
  if (e.data !== undefined && (typeof e.data !== "object" || e.data === null || Array.isArray(e.data))) throw new MoatError("DETECT_EVENTS_INVALID", `line ${number}: data must be an object`);
  return {
    type: e.type,
    time: e.time,
    ...(typeof e.subject === "string" ? { subject: e.subject } : {}),
    ...(typeof e.actor === "string" ? { actor: e.actor } : {}),
    ...(e.data ? { data: e.data as Record<string, unknown> } : {}),
  };
}

/** Ports for a replay with nothing stored: groups and firmware given in memory. */
export function memoryPorts(input: { deviceGroups?: Record<string, string | null>; groups?: Awaited<ReturnType<DetectionPorts["groupSettings"]>>; firmware?: Record<string, number> } = {}): DetectionPorts {
  return {
    deviceGroup: async (id) => input.deviceGroups?.[id] ?? null,
    groupSettings: async () => input.groups ?? [],
    firmwareSecurityVersion: async (id) => input.firmware?.[id] ?? null,
  };
}

export async function replayEvents(lines: Iterable<string> | AsyncIterable<string>, rules: readonly Rule[], ports: DetectionPorts): Promise<ReplayResult> {
  let clock = 0;
  const signals: AlertSignal[] = [];
  const engine = new DetectionEngine({ rules, ports, now: () => clock, onAlert: (signal) => signals.push(signal) });
  await engine.reloadGroups();
  let count = 0;
  let number = 0;
  for await (const line of lines) {
    number++;
    if (line.trim() === "") continue;
    const event = parseEventLine(line, number);
    // Time never runs backwards: an out-of-order line counts at the latest time seen.
    clock = Math.max(clock, Date.parse(event.time));
    count++;
    if (event.type === "traffic.published" && event.subject) engine.published(event.subject, Number(event.data?.bytes ?? 0) || 0);
    else if (event.type === "traffic.delivered" && event.subject) engine.delivered(event.subject);
    else engine.ingest(event);
    await engine.settle();
  }
  const alerts = new Map<string, ReplayedAlert>();
  for (const s of signals) {
    const key = `${s.rule}|${s.subject.kind}|${s.subject.id}`;
    const at = new Date(s.at).toISOString();
    const existing = alerts.get(key);
    if (existing) {
      existing.count++;
      existing.lastSeen = at;
    } else alerts.set(key, { rule: s.rule, subject: s.subject, severity: s.severity, count: 1, firstSeen: at, lastSeen: at, evidence: s.evidence });
  }
  return { events: count, alerts: [...alerts.values()], signals };
}
