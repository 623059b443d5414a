/**
 * The response executor: answers `alert.raised` events with the actions of the playbooks for the
 * alert's rule (or, without one, the rule's default actions), each under its playbook's rate cap, and
 * undoes automatic actions on request. Every action, whether done, recorded in dry-run, skipped or
 * failed, is a row and a `respond.action` security event naming the alert that caused it.
 *
 * Automatic quarantine and revocation happen only when a playbook lists them: no rule's default
 * includes them. Each playbook acts at most once per alert and action, however often the alert's count
 * grows.
 */
import { randomUUID } from "node:crypto";
import type { SecurityEventInput } from "../audit/index.js";
import type { Change } from "../ports.js";
import { MoatError } from "../errors.js";
import { parseCidr } from "../lib/ip-address.js";
import { pageLimit } from "../lib/page.js";
import { notificationOf, type Notifier } from "./notifier.js";
import { DEFAULT_RATE_LIMIT, type PlaybookDefinition } from "./playbook.js";
import type { ActionName, ActionRecord, AlertSubject, CertificateRevoker, DeviceContainment, RespondStore } from "./ports.js";

/** The security event detect appends when an alert opens or its count grows (the contract between the two). */
export const ALERT_RAISED = "alert.raised";
export const ACTION_EVENT = "respond.action";
export const UNDO_EVENT = "respond.undone";
export const RATE_CAPPED_EVENT = "respond.rate_capped";

export interface RaisedAlert {
  alertId: string;
  rule: string;
  subject: AlertSubject;
  severity: string;
  count: number;
}

/** Reads the contract's data out of an `alert.raised` event; null when it does not fit. */
export function raisedAlertOf(event: SecurityEventInput): RaisedAlert | null {
  if (event.type !== ALERT_RAISED) return null;
  const data = event.data ?? {};
  const subject = data.subject as { kind?: unknown; id?: unknown } | undefined;
  if (typeof data.alertId !== "string" || typeof data.rule !== "string" || !subject || typeof subject.kind !== "string" || typeof subject.id !== "string") return null;
  return {
    alertId: data.alertId,
    rule: data.rule,
    subject: { kind: subject.kind, id: subject.id },
    severity: typeof data.severity === "string" ? data.severity : (event.severity ?? "medium"),
    count: Number.isSafeInteger(data.count) ? (data.count as number) : 1,
  };
}

/** The detection rule's own default actions beyond the alert itself (credential stuffing: `ban-range`). */
export type RuleDefaults = (rule: string) => readonly ActionName[];

export interface ExecutorDeps {
  store: RespondStore;
  containment: DeviceContainment;
  /** Loaded on first use: revocation needs the PKI. */
  revoker: () => CertificateRevoker;
  notifier: Notifier;
  ruleDefaults: RuleDefaults;
  now?: () => number;
  onError?: (error: unknown) => void;
}

/** What one alert led to: the action rows written for it. */
export type Outcome = ActionRecord[];

export class ResponseExecutor {
  private playbooks: PlaybookDefinition[] | null = null;
  /** Alerts are answered one at a time, so two alerts cannot both pass a playbook's cap with one slot left. */
  private queue: Promise<unknown> = Promise.resolve();
  /** When each cap last raised `respond.rate_capped`: once per window, not once per skipped action. */
  private readonly cappedAt = new Map<string, number>();
  private readonly now: () => number;
  /** Where failures of background work (feed reloads, alerts from the raw stream) go; `moat serve` sets its logger here. */
  onError: (error: unknown) => void;

  constructor(private readonly deps: ExecutorDeps) {
    this.now = deps.now ?? Date.now;
    this.onError = deps.onError ?? (() => undefined);
  }

  /** Re-reads the playbooks (at start, and on a `playbook.changed` feed row). */
  async reload(): Promise<void> {
    this.playbooks = (await this.deps.store.playbooks.list()).map((p) => p.definition);
  }

  /** The change-feed consumer: a playbook applied or deleted anywhere takes effect here. */
  onChange(change: Change): void {
    if (change.kind === "playbook.changed") void this.reload().catch((error: unknown) => this.onError(error));
  }

  /** The raw event stream consumer: answers `alert.raised`, ignores everything else. */
  onEvent(event: SecurityEventInput): void {
    const alert = raisedAlertOf(event);
    if (!alert) return;
    void this.handle(alert).catch((error: unknown) => this.onError(error));
  }

  /** Answers one alert; resolves with the action rows written (for callers that wait: tests, the bench). */
  handle(alert: RaisedAlert): Promise<Outcome> {
    const run = this.queue.then(() => this.answer(alert));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async answer(alert: RaisedAlert): Promise<Outcome> {
    if (this.playbooks === null) await this.reload();
    const playbooks = this.playbooks!.filter((p) => p.rule === alert.rule || p.rule === "*");
    const done = await this.deps.store.actions.list({ alertId: alert.alertId, limit: 1000 });
    const already = new Set(done.map((a) => `${a.playbook ?? ""}\u0000${a.action}`));
    const outcome: Outcome = [];
    for (const playbook of playbooks)
      for (const action of playbook.actions) {
        if (already.has(`${playbook.name}\u0000${action}`)) continue;
        outcome.push(await this.act(alert, action, playbook));
      }
    // Without a playbook for the rule, the rule's defaults answer (never quarantine or revoke), and a
    // new alert goes to every notification target at or above its least severity.
    if (playbooks.length === 0) {
      for (const action of this.deps.ruleDefaults(alert.rule)) {
        if (action === "quarantine" || action === "revoke" || already.has(`\u0000${action}`)) continue;
        outcome.push(await this.act(alert, action, null));
      }
      if (alert.count === 1) await this.deps.notifier.enqueue(notificationOf(alertEvent(alert)), null);
    } else if (alert.count === 1 && !playbooks.some((p) => p.actions.includes("notify"))) {
      await this.deps.notifier.enqueue(notificationOf(alertEvent(alert)), null);
    }
    return outcome;
  }

  private async act(alert: RaisedAlert, action: ActionName, playbook: PlaybookDefinition | null): Promise<ActionRecord> {
    const actor = playbook ? `playbook:${playbook.name}` : `rule:${alert.rule}`;
    const record: ActionRecord = {
      id: `act_${randomUUID().replace(/-/g, "").slice(0, 20)}`,
      alertId: alert.alertId,
      playbook: playbook?.name ?? null,
      rule: alert.rule,
      action,
      subject: alert.subject,
      mode: "auto",
      status: "done",
      reason: null,
      detail: {},
      actor,
      createdAt: new Date(this.now()).toISOString(),
      undoneAt: null,
      undoneBy: null,
    };
    const unfit = unfitSubject(action, alert.subject);
    if (unfit) return this.record({ ...record, status: "skipped", reason: unfit });
    const cap = playbook?.rateLimit ?? DEFAULT_RATE_LIMIT;
    const since = new Date(this.now() - cap.windowMs).toISOString();
    const used = await this.deps.store.actions.countSince(playbook?.name ?? null, alert.rule, since);
    if (used >= cap.max) return this.capped(record, cap, used);
    if (playbook?.mode === "dry-run") return this.record({ ...record, status: "dry-run", reason: `would ${describe(action, alert.subject)}` });
    const why = `alert ${alert.alertId} (${alert.rule})`;
    try {
      switch (action) {
        case "quarantine": {
          const { from } = await this.deps.containment.quarantine(alert.subject.id, actor, why);
          return await this.record({ ...record, reason: from === "quarantined" ? "already quarantined" : "quarantined", detail: { from } });
        }
        case "revoke": {
          const serials = await this.deps.revoker().revokeDevice(alert.subject.id, actor);
          return await this.record({ ...record, reason: `${serials.length} certificate(s) revoked`, detail: { serials } });
        }
        case "ban-range": {
          const banForMs = playbook ? playbook.banForMs : 3_600_000;
          const expiresAt = banForMs === null ? null : new Date(this.now() + banForMs).toISOString();
          return await this.record({ ...record, reason: "banned", detail: { range: alert.subject.id, expiresAt } }, async (uow) => {
            await uow.bans.upsert({ range: alert.subject.id, actionId: record.id, expiresAt, createdAt: record.createdAt, createdBy: actor });
            await uow.changes.append({ kind: "ban.changed", subject: alert.subject.id, data: { op: "banned", range: alert.subject.id, expiresAt } });
          });
        }
        case "notify": {
          const ids = await this.deps.notifier.enqueue(notificationOf(alertEvent(alert)), playbook?.notify ?? []);
          return await this.record({ ...record, reason: `${ids.length} delivery(ies) queued`, detail: { deliveries: ids } });
        }
      }
    } catch (error) {
      return this.record({ ...record, status: "failed", reason: (error instanceof Error ? error.message : String(error)).slice(0, 300) });
    }
  }

  /** Beyond the cap: a skipped row, and once per window a `respond.rate_capped` event (severity high). */
  private async capped(record: ActionRecord, cap: { max: number; windowMs: number }, used: number): Promise<ActionRecord> {
    const key = `${record.playbook ?? ""}\u0000${record.rule}`;
    const last = this.cappedAt.get(key);
    const announce = last === undefined || this.now() - last >= cap.windowMs;
    if (announce) this.cappedAt.set(key, this.now());
    return this.record({ ...record, status: "skipped", reason: "rate_cap", detail: { max: cap.max, windowMs: cap.windowMs, used } }, async (uow) => {
      if (announce)
        await uow.events.append({
          type: RATE_CAPPED_EVENT,
          severity: "high",
          actor: record.actor,
          subject: record.playbook ?? `rule:${record.rule}`,
          data: { alertId: record.alertId, playbook: record.playbook, rule: record.rule, action: record.action, max: cap.max, windowMs: cap.windowMs },
        });
    });
  }

  /** Writes the row and its event (plus `extra`, in the same transaction). */
  private async record(record: ActionRecord, extra?: (uow: Parameters<Parameters<RespondStore["transact"]>[0]>[0]) => Promise<void>): Promise<ActionRecord> {
    await this.deps.store.transact(async (uow) => {
      await uow.actions.insert(record);
      await extra?.(uow);
      await uow.events.append(actionEvent(record));
    });
    return record;
  }

  // --- reading and undoing ---

  async listActions(filter: { alertId?: string; playbook?: string; limit?: number } = {}): Promise<ActionRecord[]> {
    return this.deps.store.actions.list({ ...filter, limit: pageLimit(filter.limit, 100) });
  }

  async getAction(id: string): Promise<ActionRecord> {
    const action = await this.deps.store.actions.get(checkActionId(id));
    if (!action) throw new MoatError("RESPOND_ACTION_NOT_FOUND", `no response action ${id}`);
    return action;
  }

  /**
   * Undoes a done action: a quarantine returns the device to the status it had, a ban is lifted.
   * A revocation cannot be undone (RESPOND_UNDO_IRREVERSIBLE: issue the device a new certificate), nor
   * can a notification that was sent.
   */
  async undo(id: string, actor: string): Promise<ActionRecord> {
    const action = await this.getAction(id);
    if (action.status !== "done") throw new MoatError("RESPOND_UNDO_NOT_APPLICABLE", `action ${id} is ${action.status}; only a done action can be undone`, { detail: { status: action.status } });
    const undone: ActionRecord = { ...action, status: "undone", undoneAt: new Date(this.now()).toISOString(), undoneBy: actor };
    const finish = async (extra?: (uow: Parameters<Parameters<RespondStore["transact"]>[0]>[0]) => Promise<void>) => {
      await this.deps.store.transact(async (uow) => {
        const current = await uow.actions.get(id, { forUpdate: true });
        if (current?.status !== "done") throw new MoatError("RESPOND_UNDO_NOT_APPLICABLE", `action ${id} was undone meanwhile`);
        await extra?.(uow);
        await uow.actions.markUndone(id, undone.undoneAt!, actor);
        await uow.events.append({
          type: UNDO_EVENT,
          severity: "medium",
          actor,
          subject: action.subject.id,
          data: { actionId: id, alertId: action.alertId, action: action.action, playbook: action.playbook, subject: action.subject },
        });
      });
      return undone;
    };
    switch (action.action) {
      case "quarantine": {
        const from = typeof action.detail.from === "string" && action.detail.from !== "quarantined" ? action.detail.from : null;
        // A device that was already quarantined before the action stays so: undo changes nothing but the record.
        if (from !== null) await this.deps.containment.restore(action.subject.id, from, actor, `undo of ${id} (alert ${action.alertId})`);
        return finish();
      }
      case "ban-range":
        return finish(async (uow) => {
          const ban = await uow.bans.get(action.subject.id);
          // A later ban of the same range (another action) is not lifted by undoing this one.
          if (ban && ban.actionId === id) {
            await uow.bans.delete(action.subject.id);
            await uow.changes.append({ kind: "ban.changed", subject: action.subject.id, data: { op: "unbanned", range: action.subject.id, expiresAt: null } });
          }
        });
      case "revoke":
        throw new MoatError(
          "RESPOND_UNDO_IRREVERSIBLE",
          `action ${id} revoked ${String((action.detail.serials as unknown[] | undefined)?.length ?? 0)} certificate(s); revocation is final. Undo quarantine if any, then issue the device a new certificate (moat cert issue, or EST enrollment with a new enrollment token)`,
          { detail: { serials: action.detail.serials ?? [] } },
        );
      case "notify":
        throw new MoatError("RESPOND_UNDO_IRREVERSIBLE", `action ${id} sent notifications; a sent message cannot be recalled`);
    }
  }
}

function checkActionId(id: string): string {
  if (typeof id !== "string" || !/^act_[a-f0-9]{20}$/.test(id)) throw new MoatError("RESPOND_ACTION_NOT_FOUND", `${JSON.stringify(String(id).slice(0, 64))} is not a response action id (act_…)`);
  return id;
}

/** Why an action cannot apply to this subject, or null. */
function unfitSubject(action: ActionName, subject: AlertSubject): string | null {
  if ((action === "quarantine" || action === "revoke") && subject.kind !== "device") return `subject_not_device (${subject.kind})`;
  if (action === "ban-range") {
    if (subject.kind !== "address-range") return `subject_not_address_range (${subject.kind})`;
    if (parseCidr(subject.id) === null) return "subject_not_cidr";
  }
  return null;
}

function describe(action: ActionName, subject: AlertSubject): string {
  switch (action) {
    case "quarantine":
      return `quarantine device ${subject.id}`;
    case "revoke":
      return `revoke the certificates of device ${subject.id}`;
    case "ban-range":
      return `ban ${subject.id} on the MQTT listeners`;
    case "notify":
      return "notify the playbook's targets";
  }
}

function actionEvent(record: ActionRecord): SecurityEventInput {
  const severity = record.status === "done" && (record.action === "quarantine" || record.action === "revoke") ? "high" : record.status === "failed" ? "high" : "medium";
  return {
    type: ACTION_EVENT,
    severity,
    actor: record.actor,
    subject: record.subject.id,
    data: {
      actionId: record.id,
      alertId: record.alertId,
      playbook: record.playbook,
      rule: record.rule,
      action: record.action,
      status: record.status,
      subject: record.subject,
      ...(record.reason ? { reason: record.reason } : {}),
      ...(Object.keys(record.detail).length ? { detail: record.detail } : {}),
    },
  };
}

function alertEvent(alert: RaisedAlert): SecurityEventInput {
  return { type: ALERT_RAISED, severity: alert.severity as SecurityEventInput["severity"], data: { alertId: alert.alertId, rule: alert.rule, subject: alert.subject, severity: alert.severity, count: alert.count } };
}
