/**
 * Alerts: what detection raises, stored and de-duplicated (one unresolved alert per rule and subject,
 * with a count), acknowledged and resolved by operators. Every raise and every transition is also a
 * security event (`alert.raised`, `alert.acknowledged`, `alert.resolved`) appended in the same
 * transaction, so it reaches the audit log and the raw event stream that respond's playbooks and
 * notifications follow.
 */
import { randomUUID } from "node:crypto";
import { MoatError } from "../errors.js";
import { pageLimit } from "../lib/page.js";
import type { AlertSignal, Evidence } from "./engine.js";
import type { AlertFilter, AlertRecord, DetectStore } from "./ports.js";

/** Evidence kept per alert: the newest items. */
export const MAX_ALERT_EVIDENCE = 20;
const ALERT_ID = /^[0-9a-f-]{36}$/;

/** The alert as `moat alerts list --json` and the API print it. */
export interface AlertView {
  id: string;
  rule: string;
  subject: AlertRecord["subject"];
  severity: AlertRecord["severity"];
  status: AlertRecord["status"];
  count: number;
  firstSeen: string;
  lastSeen: string;
  evidence: Evidence[];
  acknowledgedBy: string | null;
  resolvedBy: string | null;
}

function view(a: AlertRecord): AlertView {
  return { id: a.id, rule: a.rule, subject: a.subject, severity: a.severity, status: a.status, count: a.count, firstSeen: a.firstSeen, lastSeen: a.lastSeen, evidence: a.evidence, acknowledgedBy: a.acknowledgedBy, resolvedBy: a.resolvedBy };
}

function assertAlertId(id: unknown): asserts id is string {
  if (typeof id !== "string" || !ALERT_ID.test(id)) throw new MoatError("ALERT_NOT_FOUND", `no alert ${JSON.stringify(String(id).slice(0, 64))}`);
}

export class AlertService {
  constructor(
    private readonly store: DetectStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Opens an alert, or counts one more firing into the unresolved alert of the same rule and subject. */
  async raise(signal: AlertSignal): Promise<AlertView> {
    const at = new Date(signal.at).toISOString();
    return this.store.transact(async (uow) => {
      const existing = await uow.alerts.findUnresolved(signal.rule, signal.subject, { forUpdate: true });
      let alert: AlertRecord;
      if (existing) {
        alert = { ...existing, count: existing.count + 1, lastSeen: at, severity: signal.severity, evidence: [...existing.evidence, ...signal.evidence].slice(-MAX_ALERT_EVIDENCE) };
        await uow.alerts.update(alert);
      } else {
        alert = {
          id: randomUUID(),
          rule: signal.rule,
          subject: signal.subject,
          severity: signal.severity,
          status: "open",
          count: 1,
          firstSeen: at,
          lastSeen: at,
          evidence: signal.evidence.slice(-MAX_ALERT_EVIDENCE),
          acknowledgedBy: null,
          resolvedBy: null,
        };
        await uow.alerts.insert(alert);
      }
      await uow.events.append({
        type: "alert.raised",
        severity: alert.severity,
        actor: "system:detect",
        subject: alert.subject.id,
        data: { alertId: alert.id, rule: alert.rule, subject: alert.subject, severity: alert.severity, count: alert.count },
      });
      return view(alert);
    });
  }

  async get(id: string): Promise<AlertView> {
    assertAlertId(id);
    const alert = await this.store.alerts.get(id);
    if (!alert) throw new MoatError("ALERT_NOT_FOUND", `no alert ${id}`);
    return view(alert);
  }

  async list(filter: Partial<AlertFilter> = {}): Promise<{ alerts: AlertView[]; next: string | null }> {
    const limit = pageLimit(filter.limit, 100);
    const rows = await this.store.alerts.list({ ...filter, limit: limit + 1 });
    const page = rows.slice(0, limit);
    return { alerts: page.map(view), next: rows.length > limit ? page[page.length - 1]!.id : null };
  }

  /** Unresolved alerts by severity (for the metrics). */
  countUnresolved(): Promise<Record<string, number>> {
    return this.store.alerts.countUnresolved();
  }

  acknowledge(id: string, actor: string): Promise<AlertView> {
    return this.transition(id, "acknowledged", actor);
  }

  resolve(id: string, actor: string): Promise<AlertView> {
    return this.transition(id, "resolved", actor);
  }

  private async transition(id: string, to: "acknowledged" | "resolved", actor: string): Promise<AlertView> {
    assertAlertId(id);
    return this.store.transact(async (uow) => {
      const alert = await uow.alerts.get(id, { forUpdate: true });
      if (!alert) throw new MoatError("ALERT_NOT_FOUND", `no alert ${id}`);
      if (alert.status === to) return view(alert);
      if (alert.status === "resolved") throw new MoatError("ALERT_TRANSITION", `alert ${id} is resolved; a new firing opens a new alert`, { detail: { from: alert.status, to } });
      const updated: AlertRecord = { ...alert, status: to, ...(to === "acknowledged" ? { acknowledgedBy: actor } : { resolvedBy: actor }) };
      await uow.alerts.update(updated);
      await uow.events.append({
        type: to === "acknowledged" ? "alert.acknowledged" : "alert.resolved",
        severity: "info",
        actor,
        subject: alert.subject.id,
        data: { alertId: alert.id, rule: alert.rule, subject: alert.subject, severity: alert.severity, count: alert.count },
      });
      return view(updated);
    });
  }
}
