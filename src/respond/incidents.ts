/**
 * Incidents group alerts and the actions taken on them. The timeline is assembled from the audit log,
 * not kept beside it: every entry names its sequence number, so each line of a post-incident report
 * can be checked against the tamper-evident log (`moat audit prove SEQ`).
 */
import { randomUUID } from "node:crypto";
import type { SecurityEvent } from "../audit/index.js";
import { MoatError } from "../errors.js";
import { pageLimit } from "../lib/page.js";
import { ACTION_EVENT, ALERT_RAISED } from "./executor.js";
import type { ActionRecord, AuditReader, IncidentRecord, RespondStore } from "./ports.js";

const ALERT_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
const INCIDENT_ID = /^inc_[a-f0-9]{16}$/;
const SEVERITIES = ["info", "low", "medium", "high", "critical"];
/** How far back, in audit entries, `open` looks for the alerts' first events. */
const LOOKBACK_ENTRIES = 100_000;
/** The most entries a timeline holds; past it the report says it was cut. */
const MAX_TIMELINE = 5_000;
/** How long before its first alert an incident's timeline starts, with its devices' events (the evidence). */
const LEAD_MS = 10 * 60_000;
/** Events about an alert's device that belong on its incident's timeline. */
const DEVICE_EVENTS = new Set(["device.status_changed", "cert.revoked", "acl.denied", "device.connected", "device.disconnected", "auth.failed", "broker.limit_exceeded", "device.updated"]);

export interface TimelineEntry {
  seq: number;
  time: string;
  type: string;
  severity: string;
  actor: string;
  subject: string;
  summary: string;
}

export interface AlertSummary {
  alertId: string;
  rule: string;
  subject: { kind: string; id: string };
  severity: string;
  count: number;
  firstSeq: number;
  firstTime: string;
  lastSeq: number;
}

export interface IncidentReport {
  incident: IncidentRecord;
  alerts: AlertSummary[];
  actions: ActionRecord[];
  timeline: TimelineEntry[];
  /** True when the timeline was cut at MAX_TIMELINE entries. */
  truncated: boolean;
}

export interface OpenIncidentInput {
  title: string;
  alertIds: string[];
  severity?: string;
}

export class IncidentService {
  constructor(
    private readonly store: RespondStore,
    private readonly audit: AuditReader & { headSeq(): Promise<number> },
  ) {}

  async open(input: OpenIncidentInput, actor: string): Promise<IncidentRecord> {
    const title = typeof input.title === "string" ? input.title.trim() : "";
    if (title.length === 0 || title.length > 200 || /[\u0000-\u001f]/.test(title)) throw new MoatError("INCIDENT_INVALID", "an incident title is 1-200 printable characters");
    if (!Array.isArray(input.alertIds) || input.alertIds.length > 100) throw new MoatError("INCIDENT_INVALID", "an incident groups at most 100 alerts");
    for (const id of input.alertIds) if (typeof id !== "string" || !ALERT_ID.test(id)) throw new MoatError("INCIDENT_INVALID", `${JSON.stringify(String(id).slice(0, 64))} is not an alert id`);
    if (input.severity !== undefined && !SEVERITIES.includes(input.severity)) throw new MoatError("INCIDENT_INVALID", `severity must be one of ${SEVERITIES.join(", ")}`);
    const alertIds = [...new Set(input.alertIds)];
    const head = await this.audit.headSeq();
    const { found, leads } = await this.findAlerts(alertIds, Math.max(0, head - LOOKBACK_ENTRIES), head);
    const severity = input.severity ?? highest([...found.values()].map((a) => a.severity)) ?? "medium";
    const first = [...found.values()].sort((a, b) => a.firstSeq - b.firstSeq)[0];
    let fromSeq = first?.firstSeq ?? head + 1;
    if (first) {
      // The evidence before the first alert: its devices' events of the LEAD_MS before it.
      const devices = new Set([...found.values()].filter((a) => a.subject.kind === "device").map((a) => a.subject.id));
      const cutoff = Date.parse(first.firstTime) - LEAD_MS;
      for (const lead of leads) if (lead.seq < fromSeq && devices.has(lead.subject) && Date.parse(lead.time) >= cutoff) fromSeq = lead.seq;
    }
    const incident: IncidentRecord = {
      id: `inc_${randomUUID().replace(/-/g, "").slice(0, 16)}`,
      title,
      status: "open",
      severity,
      alertIds,
      openedAt: new Date().toISOString(),
      openedBy: actor,
      closedAt: null,
      closedBy: null,
      resolution: null,
      fromSeq,
    };
    await this.store.transact(async (uow) => {
      await uow.incidents.insert(incident);
      await uow.events.append({
        type: "incident.opened",
        severity: severity as "medium",
        actor,
        subject: incident.id,
        data: { incidentId: incident.id, title, alertIds, unknownAlerts: alertIds.filter((id) => !found.has(id)) },
      });
    });
    return incident;
  }

  async get(id: string): Promise<IncidentRecord> {
    if (typeof id !== "string" || !INCIDENT_ID.test(id)) throw new MoatError("INCIDENT_NOT_FOUND", `${JSON.stringify(String(id).slice(0, 64))} is not an incident id (inc_…)`);
    const incident = await this.store.incidents.get(id);
    if (!incident) throw new MoatError("INCIDENT_NOT_FOUND", `no incident ${id}`);
    return incident;
  }

  async list(filter: { status?: "open" | "closed"; limit?: number } = {}): Promise<IncidentRecord[]> {
    if (filter.status !== undefined && filter.status !== "open" && filter.status !== "closed") throw new MoatError("INCIDENT_INVALID", "status is open or closed");
    return (await this.store.incidents.list({ ...(filter.status ? { status: filter.status } : {}), limit: pageLimit(filter.limit, 100) }));
  }

  async close(id: string, resolution: string | undefined, actor: string): Promise<IncidentRecord> {
    await this.get(id);
    if (resolution !== undefined && (typeof resolution !== "string" || resolution.length > 2000)) throw new MoatError("INCIDENT_INVALID", "a resolution is at most 2000 characters");
    return this.store.transact(async (uow) => {
      const incident = (await uow.incidents.get(id, { forUpdate: true })) as IncidentRecord | null;
      if (!incident) throw new MoatError("INCIDENT_NOT_FOUND", `no incident ${id}`);
      if (incident.status === "closed") throw new MoatError("INCIDENT_CLOSED", `incident ${id} was closed at ${incident.closedAt}`);
      // The closing event is the last entry of the incident's timeline.
      await uow.events.append({ type: "incident.closed", severity: "info", actor, subject: id, data: { incidentId: id, ...(resolution ? { resolution } : {}) } });
      const closed: IncidentRecord = { ...incident, status: "closed", closedAt: new Date().toISOString(), closedBy: actor, resolution: resolution ?? null };
      await uow.incidents.update(closed);
      return closed;
    });
  }

  /** The incident with its alerts, actions and timeline from the audit log. */
  async report(id: string): Promise<IncidentReport> {
    const incident = await this.get(id);
    const alertIds = new Set(incident.alertIds);
    const actions: ActionRecord[] = [];
    for (const alertId of incident.alertIds) actions.push(...(await this.store.actions.list({ alertId, limit: 1000 })));
    actions.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    const deviceIds = await this.devicesOf(alertIds, incident.fromSeq);
    const alerts = new Map<string, AlertSummary>();
    const timeline: TimelineEntry[] = [];
    let truncated = false;
    let ended = false;
    for (let after = Math.max(0, incident.fromSeq - 1); ; ) {
      const page = await this.audit.scan(after, 1000);
      for (const event of page) {
        const data = event.data ?? {};
        const alertId = typeof data.alertId === "string" ? data.alertId : null;
        if (event.type === ALERT_RAISED && alertId && alertIds.has(alertId)) noteAlert(alerts, event);
        const relevant =
          (alertId !== null && alertIds.has(alertId)) || data.incidentId === id || (DEVICE_EVENTS.has(event.type) && deviceIds.has(event.subject));
        if (!relevant) continue;
        if (timeline.length >= MAX_TIMELINE) {
          truncated = true;
          break;
        }
        timeline.push(entryOf(event));
        if (event.type === "incident.closed" && data.incidentId === id) {
          ended = true;
          break;
        }
      }
      if (truncated || ended || page.length < 1000) break;
      after = page[page.length - 1]!.seq;
    }
    return { incident, alerts: [...alerts.values()], actions, timeline, truncated };
  }

  /** The alerts' first and last `alert.raised`, and the device events seen on the way (candidates for the lead). */
  private async findAlerts(alertIds: readonly string[], afterSeq: number, head: number): Promise<{ found: Map<string, AlertSummary>; leads: { seq: number; time: string; subject: string }[] }> {
    const wanted = new Set(alertIds);
    const found = new Map<string, AlertSummary>();
    const leads: { seq: number; time: string; subject: string }[] = [];
    if (wanted.size === 0) return { found, leads };
    for (let after = afterSeq; after < head; ) {
      const page = await this.audit.scan(after, 1000);
      for (const event of page) {
        if (event.type === ALERT_RAISED && wanted.has(String(event.data?.alertId))) noteAlert(found, event);
        else if (DEVICE_EVENTS.has(event.type) && found.size < wanted.size) leads.push({ seq: event.seq, time: event.time, subject: event.subject });
      }
      if (page.length < 1000) break;
      after = page[page.length - 1]!.seq;
    }
    return { found, leads };
  }

  /** The devices the incident's alerts are about (from their `alert.raised` entries). */
  private async devicesOf(alertIds: ReadonlySet<string>, fromSeq: number): Promise<Set<string>> {
    const devices = new Set<string>();
    for (let after = Math.max(0, fromSeq - 1), pages = 0; pages < 1000; pages++) {
      const page = await this.audit.scan(after, 1000);
      for (const event of page) {
        const subject = event.data?.subject as { kind?: string; id?: string } | undefined;
        if (event.type === ALERT_RAISED && alertIds.has(String(event.data?.alertId)) && subject?.kind === "device" && typeof subject.id === "string") devices.add(subject.id);
      }
      if (page.length < 1000) break;
      after = page[page.length - 1]!.seq;
    }
    return devices;
  }
}

function highest(severities: string[]): string | undefined {
  return severities.sort((a, b) => SEVERITIES.indexOf(b) - SEVERITIES.indexOf(a))[0];
}

function noteAlert(alerts: Map<string, AlertSummary>, event: SecurityEvent): void {
  const data = event.data;
  const id = String(data.alertId);
  const subject = (data.subject ?? {}) as { kind?: string; id?: string };
  const previous = alerts.get(id);
  alerts.set(id, {
    alertId: id,
    rule: String(data.rule ?? previous?.rule ?? "?"),
    subject: { kind: String(subject.kind ?? "?"), id: String(subject.id ?? "?") },
    severity: String(data.severity ?? event.severity),
    count: Number.isSafeInteger(data.count) ? (data.count as number) : (previous?.count ?? 1),
    firstSeq: previous?.firstSeq ?? event.seq,
    firstTime: previous?.firstTime ?? event.time,
    lastSeq: event.seq,
  });
}

/** One line saying what happened, who or what acted, to what. */
function summaryOf(event: SecurityEvent): string {
  const d = event.data ?? {};
  const subject = d.subject as { kind?: string; id?: string } | undefined;
  switch (event.type) {
    case ALERT_RAISED:
      return `alert ${String(d.alertId)} raised by rule ${String(d.rule)} on ${subject?.kind ?? "?"} ${subject?.id ?? "?"} (count ${String(d.count ?? 1)})`;
    case ACTION_EVENT:
      return `${String(d.action)} ${String(d.status)}${d.playbook ? ` by playbook ${String(d.playbook)}` : ""} on ${subject?.id ?? event.subject}${d.reason ? `: ${String(d.reason)}` : ""} (${String(d.actionId)})`;
    case "respond.undone":
      return `${String(d.action)} ${String(d.actionId)} undone`;
    case "respond.rate_capped":
      return `rate cap of ${String(d.playbook ?? `rule ${String(d.rule)}`)} reached (${String(d.max)} per ${Math.round(Number(d.windowMs) / 1000)} s): ${String(d.action)} skipped`;
    case "device.status_changed":
      return `device ${event.subject}: ${String(d.from)} → ${String(d.to)}${d.reason ? ` (${String(d.reason)})` : ""}`;
    case "cert.revoked":
      return `certificate of ${event.subject} revoked${d.reason ? ` (${String(d.reason)})` : ""}`;
    case "acl.denied":
      return `denied ${String(d.action ?? "")} ${String(d.topic ?? d.resource ?? "")}`.trim();
    case "incident.opened":
      return `incident opened: ${String(d.title)}`;
    case "incident.closed":
      return `incident closed${d.resolution ? `: ${String(d.resolution)}` : ""}`;
    default:
      return `${event.type} ${event.subject}`.trim();
  }
}

function entryOf(event: SecurityEvent): TimelineEntry {
  return { seq: event.seq, time: event.time, type: event.type, severity: event.severity, actor: event.actor, subject: event.subject, summary: summaryOf(event) };
}

const md = (text: unknown) => String(text ?? "-").replace(/[|\\`*_[\]<>]/g, (c) => `\\${c}`).replace(/[\r\n]+/g, " ");

/** The post-incident report as Markdown. */
export function incidentMarkdown(report: IncidentReport): string {
  const i = report.incident;
  const lines = [
    `# Incident ${i.id}: ${md(i.title)}`,
    "",
    `- Status: ${i.status}`,
    `- Severity: ${i.severity}`,
    `- Opened: ${i.openedAt} by ${md(i.openedBy)}`,
    `- Closed: ${i.closedAt ? `${i.closedAt} by ${md(i.closedBy)}` : "-"}`,
    ...(i.resolution ? [`- Resolution: ${md(i.resolution)}`] : []),
    `- Audit entries from seq ${i.fromSeq}`,
    "",
    "## Alerts",
    "",
    "| Alert | Rule | Subject | Severity | Count | First seq | Last seq |",
    "|---|---|---|---|---|---|---|",
    ...report.alerts.map((a) => `| ${md(a.alertId)} | ${md(a.rule)} | ${md(a.subject.kind)} ${md(a.subject.id)} | ${a.severity} | ${a.count} | ${a.firstSeq} | ${a.lastSeq} |`),
    ...(report.alerts.length === 0 ? ["| (none found in the audit log) | | | | | | |"] : []),
    "",
    "## Actions",
    "",
    "| Action id | Action | Status | Playbook | Subject | When | Reason |",
    "|---|---|---|---|---|---|---|",
    ...report.actions.map((a) => `| ${a.id} | ${a.action} | ${a.status}${a.undoneAt ? ` (undone ${a.undoneAt} by ${md(a.undoneBy)})` : ""} | ${md(a.playbook ?? `rule default (${a.rule})`)} | ${md(a.subject.id)} | ${a.createdAt} | ${md(a.reason)} |`),
    ...(report.actions.length === 0 ? ["| (none) | | | | | | |"] : []),
    "",
    "## Timeline",
    "",
    "| Seq | Time | Actor | Event | What happened |",
    "|---|---|---|---|---|",
    ...report.timeline.map((e) => `| ${e.seq} | ${e.time} | ${md(e.actor)} | ${md(e.type)} | ${md(e.summary)} |`),
    ...(report.truncated ? ["", `The timeline was cut at ${MAX_TIMELINE} entries; read the rest with moat audit list.`] : []),
    "",
  ];
  return lines.join("\n");
}
