/** What posture checks report: findings with the resources they are about, evidence and a fix. */

export type Severity = "critical" | "high" | "medium" | "low" | "info";
export const SEVERITIES: readonly Severity[] = ["critical", "high", "medium", "low", "info"];

export interface Resource {
  /** `device`, `certificate`, `ca`, `role`, `client-id`, `session`, `address`, `listener`, `kek`, `audit-log`, `segmentation`, … */
  kind: string;
  id: string;
}

export interface Finding {
  check: string;
  severity: Severity;
  resources: Resource[];
  /** What was found, as data (serials, dates, counts, rule text); never a secret. */
  evidence: Record<string, unknown>;
  fix: string;
  /** Present when an unexpired suppression covers the finding: it is kept, but not counted as open. */
  suppressed?: { reason: string; expiresAt: string; by: string };
}

/**
 * `passed`: the check ran over its data and found nothing open. `failed`: it found something.
 * `not-applicable`: the setting or data it needs does not exist here (never reported as passed).
 * `error`: the check could not run (its reason says why).
 */
export type CheckStatus = "passed" | "failed" | "not-applicable" | "error";

export interface CheckOutcome {
  check: string;
  status: CheckStatus;
  /** Open (unsuppressed) findings. */
  findings: number;
  suppressed: number;
  reason?: string;
}

export interface PostureRunSummary {
  id: string;
  runAt: string;
  finishedAt: string;
  /** `full`, or `check:<id>` for a run of one check. */
  scope: string;
  actor: string;
  checks: CheckOutcome[];
  /** Open findings by severity. */
  counts: Record<Severity, number>;
  suppressed: number;
  /** Sequence number of the run's `posture.run` event in the audit log. */
  auditSeq: number | null;
}

export interface PostureRun extends PostureRunSummary {
  findings: Finding[];
}

export interface Suppression {
  id: number;
  check: string;
  /** The resource id it covers (any resource kind with this id). */
  resource: string;
  reason: string;
  expiresAt: string;
  createdAt: string;
  createdBy: string;
}

export function emptyCounts(): Record<Severity, number> {
  return { critical: 0, high: 0, medium: 0, low: 0, info: 0 };
}
