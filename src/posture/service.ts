/**
 * Posture runs: every check (or one), suppressions applied, results stored with history and recorded
 * in the audit log; and re-evaluation of one device after a change, against the latest full run.
 */
import { randomUUID } from "node:crypto";
import { MoatError } from "../errors.js";
import { pageLimit } from "../lib/page.js";
import { CHECKS, DEVICE_SCOPED_CHECKS, checkDefinition, type CheckDefinition } from "./catalogue.js";
import { evaluateDevice, evaluateFleet, INSTALLATION_CHECKS, type CheckResult, type EvaluationContext, type FleetIndex, type FleetPass } from "./evaluate.js";
import { emptyCounts, type CheckOutcome, type Finding, type PostureRun, type PostureRunSummary, type Suppression } from "./model.js";
import type { GroupPostureSettings, InstallationFacts, PostureStore, StoredFinding } from "./ports.js";

export interface PostureServiceOptions {
  store: PostureStore;
  facts: InstallationFacts;
  /** Findings of this many newest runs are kept (older runs keep their summary). Default 20. */
  keepRuns?: number;
  now?: () => number;
}

const YEAR_MS = 366 * 86_400_000;

function applySuppressions(findings: StoredFinding[], suppressions: readonly Suppression[]): void {
  if (suppressions.length === 0) return;
  for (const f of findings) {
    const match = suppressions.find((s) => s.check === f.check && f.resources.some((r) => r.id === s.resource));
    if (match) f.suppressed = { reason: match.reason, expiresAt: match.expiresAt, by: match.createdBy };
    else delete f.suppressed;
  }
}

function outcomeOf(check: string, result: CheckResult): CheckOutcome {
  const open = result.findings.filter((f) => !f.suppressed).length;
  return { check, status: result.status === "failed" && open === 0 ? "passed" : result.status, findings: open, suppressed: result.findings.length - open, ...(result.reason ? { reason: result.reason } : {}) };
}

export class PostureService {
  private index: { runId: string; index: FleetIndex } | null = null;
  private readonly now: () => number;

  constructor(private readonly options: PostureServiceOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Every check, in catalogue order. */
  checks(): readonly CheckDefinition[] {
    return CHECKS;
  }

  private context(at?: number): EvaluationContext {
    return { data: this.options.store.data, facts: this.options.facts, now: at ?? this.now() };
  }

  private async groups(): Promise<ReadonlyMap<string, GroupPostureSettings> | null> {
    return this.options.facts.groupSettings ? await this.options.facts.groupSettings() : null;
  }

  /**
   * Runs every check, or only `check`; stores the run and its findings; records `posture.run`. `at`
   * evaluates as of another time (what will be expiring or overdue by then); such a run is stored
   * with scope `as-of:<time>`, never as the current posture.
   */
  async run(options: { check?: string; actor: string; at?: number; onProgress?: (done: number, what: string) => void }): Promise<PostureRun> {
    if (options.check !== undefined && !checkDefinition(options.check)) throw new MoatError("POSTURE_CHECK_UNKNOWN", `no posture check is called ${JSON.stringify(options.check)} (moat posture list)`);
    const ctx = this.context(options.at);
    const runAt = new Date(ctx.now).toISOString();
    const groups = await this.groups();
    let fleet: Promise<FleetPass> | undefined;
    const pass = () => (fleet ??= evaluateFleet(ctx, groups, options.onProgress));
    const selected = options.check ? CHECKS.filter((c) => c.id === options.check) : CHECKS;
    const suppressions = await this.options.store.posture.activeSuppressions(runAt);
    const outcomes: CheckOutcome[] = [];
    const findings: StoredFinding[] = [];
    for (const check of selected) {
      let result: CheckResult;
      try {
        const own = INSTALLATION_CHECKS[check.id];
        result = own ? await own(ctx, pass) : ((await pass()).results.get(check.id) ?? { status: "not-applicable", reason: "no evaluation", findings: [] });
      } catch (error) {
        outcomes.push({ check: check.id, status: "error", findings: 0, suppressed: 0, reason: error instanceof Error ? error.message : String(error) });
        continue;
      }
      applySuppressions(result.findings, suppressions);
      outcomes.push(outcomeOf(check.id, result));
      findings.push(...result.findings);
    }
    const counts = emptyCounts();
    for (const f of findings) if (!f.suppressed) counts[f.severity] += 1;
    const summary: PostureRunSummary = {
      id: randomUUID(),
      runAt,
      finishedAt: new Date(this.now()).toISOString(),
      scope: options.at !== undefined ? `as-of:${runAt}${options.check ? `:${options.check}` : ""}` : options.check ? `check:${options.check}` : "full",
      actor: options.actor,
      checks: outcomes,
      counts,
      suppressed: findings.filter((f) => f.suppressed).length,
      auditSeq: null,
    };
    await this.options.store.transact(async (uow) => {
      await uow.posture.insertRun(summary);
      await uow.posture.insertFindings(summary.id, findings);
      await uow.events.append({
        type: "posture.run",
        severity: counts.critical > 0 ? "high" : "info",
        actor: options.actor,
        subject: summary.id,
        data: { scope: summary.scope, counts, suppressed: summary.suppressed, failed: outcomes.filter((o) => o.status === "failed").map((o) => o.check) },
      });
    });
    summary.auditSeq = await this.options.store.eventSeq("posture.run", summary.id);
    if (summary.auditSeq !== null) await this.options.store.posture.setRunAuditSeq(summary.id, summary.auditSeq);
    await this.options.store.posture.pruneFindings(this.options.keepRuns ?? 20);
    if (fleet && summary.scope === "full") {
      const pass = await fleet.catch(() => null);
      if (pass) this.index = { runId: summary.id, index: pass.index };
    }
    return { ...summary, findings: findings.map(({ key: _key, ...f }) => f) };
  }

  /**
   * Re-evaluates the device-scoped checks for one device after a change and updates the latest full
   * run in place (its findings about that device, and its totals). Uses the fleet index of the last
   * full run in this process; without one, one pass over the fleet builds it first.
   */
  async reevaluateDevice(deviceId: string): Promise<Finding[] | null> {
    const latest = await this.options.store.posture.latestRun("full");
    if (!latest) return null;
    const ctx = this.context();
    const groups = await this.groups();
    if (!this.index || this.index.runId !== latest.id) this.index = { runId: latest.id, index: (await evaluateFleet(ctx, groups)).index };
    const { findings, keys } = await evaluateDevice(ctx, this.index.index, deviceId, groups);
    applySuppressions(findings, await this.options.store.posture.activeSuppressions(new Date(ctx.now).toISOString()));
    const stale = await this.options.store.posture.findingKeysOfDevice(latest.id, deviceId);
    await this.options.store.posture.replaceFindings(latest.id, [...new Set([...keys, ...stale.filter((k) => DEVICE_SCOPED_CHECKS.some((c) => k.startsWith(`${c}:`)))])], findings);
    await this.options.store.posture.recountRun(latest.id);
    return findings.map(({ key: _key, ...f }) => f);
  }

  /** The newest run (full unless `scope` says otherwise), or null when none is stored. */
  latest(scope = "full"): Promise<PostureRunSummary | null> {
    return this.options.store.posture.latestRun(scope);
  }

  runs(limit?: number): Promise<PostureRunSummary[]> {
    return this.options.store.posture.listRuns(pageLimit(limit, 20));
  }

  /** One page of a run's findings, most severe first; `after` is the `next` of the previous page. */
  async findings(runId: string, filter: { check?: string; severity?: string; limit?: number; after?: number } = {}): Promise<{ findings: Finding[]; next: number | null }> {
    const limit = pageLimit(filter.limit, 100);
    const rows = await this.options.store.posture.findings(runId, { ...filter, limit });
    return { findings: rows.map(({ key: _key, ordinal: _o, ...f }) => f), next: rows.length === limit ? rows.at(-1)!.ordinal : null };
  }

  /** Suppresses one check's findings about one resource until `expiresAt` (audited as `posture.suppressed`). */
  async suppress(input: { check: string; resource: string; reason: string; expiresAt: string; actor: string }): Promise<Suppression> {
    if (!checkDefinition(input.check)) throw new MoatError("POSTURE_CHECK_UNKNOWN", `no posture check is called ${JSON.stringify(input.check)} (moat posture list)`);
    const resource = input.resource.trim();
    const reason = input.reason.trim();
    if (!resource || resource.length > 256) throw new MoatError("POSTURE_SUPPRESSION_INVALID", "a suppression names one resource id (1-256 characters)");
    if (!reason || reason.length > 1000) throw new MoatError("POSTURE_SUPPRESSION_INVALID", "a suppression needs a reason (1-1000 characters)");
    const expires = Date.parse(input.expiresAt);
    const now = this.now();
    if (!Number.isFinite(expires) || expires <= now) throw new MoatError("POSTURE_SUPPRESSION_INVALID", `the suppression would already be expired (${input.expiresAt})`);
    if (expires - now > YEAR_MS) throw new MoatError("POSTURE_SUPPRESSION_INVALID", "a suppression lasts at most a year: decide again then");
    return this.options.store.transact(async (uow) => {
      const saved = await uow.posture.insertSuppression({ check: input.check, resource, reason, expiresAt: new Date(expires).toISOString(), createdAt: new Date(now).toISOString(), createdBy: input.actor });
      await uow.events.append({ type: "posture.suppressed", severity: "medium", actor: input.actor, subject: `${input.check}:${resource}`, data: { id: saved.id, check: input.check, resource, reason, expiresAt: saved.expiresAt } });
      return saved;
    });
  }

  /** Suppressions in force now (with `all`, also the lapsed ones). */
  suppressions(all = false): Promise<Suppression[]> {
    return this.options.store.posture.listSuppressions(all, new Date(this.now()).toISOString());
  }

  /**
   * Runs every check soon after start and then every `intervalMs` (`moat serve`); returns the stopper,
   * which waits for a run in progress. Runs never overlap; a failed run is reported and the next one still happens.
   */
  startSchedule(intervalMs: number, onError: (error: unknown) => void, firstAfterMs = Math.min(intervalMs, 60_000)): () => Promise<void> {
    let running: Promise<unknown> = Promise.resolve();
    let stopped = false;
    const tick = () => {
      running = running.then(() => (stopped ? undefined : this.run({ actor: "system" }))).catch(onError);
    };
    // The first run comes soon after start (the dashboard has something to show), then one per interval.
    const first = setTimeout(tick, firstAfterMs);
    first.unref();
    const timer = setInterval(tick, intervalMs);
    timer.unref();
    return async () => {
      stopped = true;
      clearTimeout(first);
      clearInterval(timer);
      await running;
    };
  }
}
