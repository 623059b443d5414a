/**
 * Decides each control of a catalogue from the evidence: the latest posture run's check outcomes,
 * configuration facts, audit events (cited by sequence number) and unexpired manual attestations.
 */
import type { CheckOutcome, PostureRunSummary } from "../posture/index.js";
import type { Catalogue, Control } from "./catalogue.js";
import type { Attestation, ConfigFact, ControlStatus } from "./ports.js";

export type EvidenceItem =
  | { kind: "posture"; check: string; status: string; findings: number; suppressed: number; reason?: string; run: string; auditSeq: number | null }
  | { kind: "config"; fact: string; ok: boolean | null; value: unknown; detail: string }
  | { kind: "audit"; type: string; latestSeq: number | null }
  | { kind: "attestation"; id: number; statement: string; owner: string; evidenceUrl: string | null; expiresAt: string; auditSeq: number | null };

export interface ControlResult {
  id: string;
  title: string;
  coverage: Control["coverage"];
  status: ControlStatus;
  evidence: EvidenceItem[];
  note?: string;
}

export interface EvaluationInput {
  catalogue: Catalogue;
  posture: PostureRunSummary | null;
  facts: Record<string, ConfigFact>;
  /** Unexpired attestations of this catalogue, newest first. */
  attestations: readonly Attestation[];
  /** Latest audit sequence number per event type the catalogue cites. */
  auditSeqs: ReadonlyMap<string, number | null>;
}

/** The verdict of one piece of automatic evidence: true passed, false failed, null could not be evaluated. */
function verdict(item: EvidenceItem): boolean | null {
  if (item.kind === "posture") return item.status === "passed" ? true : item.status === "failed" ? false : null;
  if (item.kind === "config") return item.ok;
  return null;
}

export function evaluateControl(control: Control, input: EvaluationInput): ControlResult {
  const checks = new Map<string, CheckOutcome>((input.posture?.checks ?? []).map((c) => [c.check, c]));
  const evidence: EvidenceItem[] = [];
  /** Verdicts of the items that decide (optional ones only when they could be evaluated). */
  const verdicts: (boolean | null)[] = [];
  for (const source of control.evidence) {
    if ("posture" in source) {
      const outcome = checks.get(source.posture);
      const item: EvidenceItem = outcome
        ? { kind: "posture", check: source.posture, status: outcome.status, findings: outcome.findings, suppressed: outcome.suppressed, ...(outcome.reason ? { reason: outcome.reason } : {}), run: input.posture!.id, auditSeq: input.posture!.auditSeq }
        : { kind: "posture", check: source.posture, status: "not-run", findings: 0, suppressed: 0, reason: "no posture run has evaluated this check", run: input.posture?.id ?? "", auditSeq: input.posture?.auditSeq ?? null };
      evidence.push(item);
      const v = verdict(item);
      if (!(source.optional && v === null)) verdicts.push(v);
    } else if ("config" in source) {
      const fact = input.facts[source.config];
      const item: EvidenceItem = fact ? { kind: "config", fact: source.config, ok: fact.ok, value: fact.value, detail: fact.detail } : { kind: "config", fact: source.config, ok: null, value: null, detail: "this installation does not know this fact" };
      evidence.push(item);
      const v = verdict(item);
      if (!(source.optional && v === null)) verdicts.push(v);
    } else {
      for (const type of source.audit) evidence.push({ kind: "audit", type, latestSeq: input.auditSeqs.get(type) ?? null });
    }
  }
  const attestation = input.attestations.find((a) => a.control === control.id);
  if (attestation)
    evidence.push({ kind: "attestation", id: attestation.id, statement: attestation.statement, owner: attestation.owner, evidenceUrl: attestation.evidenceUrl, expiresAt: attestation.expiresAt, auditSeq: attestation.auditSeq });
  const status = decide(control, verdicts, attestation !== undefined);
  return { id: control.id, title: control.title, coverage: control.coverage, status, evidence, ...(control.note ? { note: control.note } : {}) };
}

function decide(control: Control, verdicts: readonly (boolean | null)[], attested: boolean): ControlStatus {
  // Failing evidence fails the control whatever else says otherwise; an attestation cannot outvote it.
  if (verdicts.some((v) => v === false)) return "fail";
  switch (control.coverage) {
    case "not-applicable":
      return attested ? "pass" : "not-applicable";
    case "manual":
    case "evidence-assisted":
      return attested ? "pass" : "manual";
    case "automatic":
      // Evidence that could not be evaluated (a check not applicable here) leaves the decision to a person.
      if (verdicts.length > 0 && verdicts.every((v) => v === true)) return "pass";
      return attested ? "pass" : "manual";
  }
}

export function evaluateCatalogue(input: EvaluationInput): ControlResult[] {
  return input.catalogue.controls.map((control) => evaluateControl(control, input));
}

/** Share of decided controls that pass: pass / (pass + fail + manual), in percent with one decimal. */
export function scoreOf(results: readonly { status: ControlStatus }[]): { score: number; counts: Record<ControlStatus, number> } {
  const counts: Record<ControlStatus, number> = { pass: 0, fail: 0, manual: 0, "not-applicable": 0 };
  for (const r of results) counts[r.status] += 1;
  const counted = counts.pass + counts.fail + counts.manual;
  return { score: counted === 0 ? 0 : Math.round((counts.pass / counted) * 1000) / 10, counts };
}
