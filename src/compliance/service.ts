/**
 * Compliance: evaluate a catalogue against the installation's evidence, write signed reports (their
 * hash appended to the audit log), verify them, record manual attestations, and draft the UK PSTI
 * statement of compliance.
 */
import { randomUUID } from "node:crypto";
import type { AuditSigner } from "../audit/index.js";
import { MoatError } from "../errors.js";
import { pageLimit } from "../lib/page.js";
import type { PostureRunSummary } from "../posture/index.js";
import { CATALOGUES, catalogueOf, controlOf, coverageMatrix, type Catalogue } from "./catalogue.js";
import { evaluateCatalogue, scoreOf, type ControlResult } from "./evaluate.js";
import type { Attestation, ComplianceFacts, ComplianceStore, ControlStatus, StoredReport } from "./ports.js";
import { REPORT_FORMAT, reportHash, signReport, verifyReportText, type ComplianceReport, type VerifyOutcome } from "./report.js";

export interface ComplianceServiceOptions {
  store: ComplianceStore;
  facts: ComplianceFacts;
  /** The newest full posture run; `fresh` runs one first. */
  posture: { latest(): Promise<PostureRunSummary | null>; run(options: { actor: string }): Promise<PostureRunSummary> };
  signer: () => Promise<AuditSigner>;
  /** The installation's audit key in verifier form (`moat audit key export`). */
  verifierKey: () => Promise<string>;
  now?: () => number;
}

const MAX_ATTESTATION_MS = 3 * 366 * 86_400_000;

export interface FrameworkScore {
  standard: string;
  title: string;
  score: number;
  counts: Record<ControlStatus, number>;
  failing: { id: string; title: string }[];
}

export class ComplianceService {
  private readonly now: () => number;

  constructor(private readonly options: ComplianceServiceOptions) {
    this.now = options.now ?? Date.now;
  }

  catalogues(): readonly Catalogue[] {
    return CATALOGUES;
  }

  coverage() {
    return coverageMatrix();
  }

  /** Evaluates a catalogue now from the stored evidence, without writing anything. */
  async evaluate(standard: string): Promise<{ catalogue: Catalogue; posture: PostureRunSummary | null; controls: ControlResult[] }> {
    const catalogue = catalogueOf(standard);
    const at = new Date(this.now()).toISOString();
    const [posture, facts, attestations] = await Promise.all([
      this.options.posture.latest(),
      this.options.facts.config(),
      this.options.store.compliance.attestations({ standard, validAt: at, limit: 1000 }),
    ]);
    const types = new Set(catalogue.controls.flatMap((c) => c.evidence.flatMap((e) => ("audit" in e ? e.audit : []))));
    const auditSeqs = new Map<string, number | null>();
    for (const type of types) auditSeqs.set(type, await this.options.store.eventSeq(type));
    return { catalogue, posture, controls: evaluateCatalogue({ catalogue, posture, facts, attestations, auditSeqs }) };
  }

  /**
   * Writes a signed report: evaluates, compares with the previous report of the standard, signs with
   * the audit key, stores it and appends its hash to the audit log (`compliance.report`).
   */
  async report(options: { standard: string; actor: string; fresh?: boolean }): Promise<{ report: ComplianceReport; hash: string }> {
    catalogueOf(options.standard);
    if (options.fresh || !(await this.options.posture.latest())) await this.options.posture.run({ actor: options.actor });
    const { catalogue, posture, controls } = await this.evaluate(options.standard);
    const { score, counts } = scoreOf(controls);
    const previous = await this.options.store.compliance.latestReport(options.standard);
    const report: ComplianceReport = {
      format: REPORT_FORMAT,
      id: randomUUID(),
      standard: { id: catalogue.standard, title: catalogue.title, edition: catalogue.edition, catalogueVersion: catalogue.catalogueVersion, titles: catalogue.titles },
      installation: { trustDomain: this.options.facts.installation.trustDomain, manufacturer: this.options.facts.installation.manufacturer },
      generatedAt: new Date(this.now()).toISOString(),
      generatedBy: options.actor,
      posture: posture ? { run: posture.id, runAt: posture.runAt, auditSeq: posture.auditSeq } : null,
      score: { percent: score, counts },
      changes: {
        previous: previous ? { id: previous.id, generatedAt: previous.createdAt, hash: previous.hash, percent: previous.summary.score } : null,
        scoreDelta: previous ? Math.round((score - previous.summary.score) * 10) / 10 : null,
        controls: controls.filter((c) => !previous || previous.summary.statuses[c.id] !== c.status).map((c) => ({ id: c.id, from: previous?.summary.statuses[c.id] ?? null, to: c.status })),
      },
      controls,
    };
    const signed = await signReport(report, await this.options.signer());
    const hash = reportHash(signed);
    const stored: StoredReport & { report: string } = {
      id: signed.id,
      standard: options.standard,
      createdAt: signed.generatedAt,
      actor: options.actor,
      hash,
      summary: { score, counts, statuses: Object.fromEntries(controls.map((c) => [c.id, c.status])) },
      report: JSON.stringify(signed),
    };
    await this.options.store.transact(async (uow) => {
      await uow.compliance.insertReport(stored);
      await uow.events.append({ type: "compliance.report", severity: "info", actor: options.actor, subject: signed.id, data: { standard: options.standard, sha256: hash, score, counts } });
    });
    return { report: signed, hash };
  }

  /**
   * Verifies a report file: unchanged since signing, and signed by `key` (a verifier key from
   * `moat audit key export`), or by this installation's audit key when no key is given.
   */
  async verify(text: string, key?: string): Promise<VerifyOutcome> {
    const outcome = verifyReportText(text, key ?? (await this.options.verifierKey()));
    return outcome;
  }

  /** Stored reports (summaries), newest first. */
  reports(filter: { standard?: string; limit?: number } = {}): Promise<StoredReport[]> {
    if (filter.standard) catalogueOf(filter.standard);
    return this.options.store.compliance.reports({ ...filter, limit: pageLimit(filter.limit, 20) });
  }

  /** The signed JSON of a stored report, exactly as written. */
  async reportDocument(id: string): Promise<string> {
    const text = await this.options.store.compliance.reportDocument(id);
    if (!text) throw new MoatError("COMPLIANCE_REPORT_NOT_FOUND", `no compliance report ${JSON.stringify(id)}`);
    return text;
  }

  /** Records a manual attestation for `STANDARD:ID` (audited as `compliance.attested`). */
  async attest(input: { control: string; statement: string; evidenceUrl?: string; owner: string; expiresAt: string; actor: string }): Promise<Attestation> {
    const { catalogue, control } = controlOf(input.control);
    const statement = input.statement.trim();
    const owner = input.owner.trim();
    if (!statement || statement.length > 4000) throw new MoatError("COMPLIANCE_ATTESTATION_INVALID", "an attestation needs a statement (1-4000 characters)");
    if (!owner || owner.length > 200) throw new MoatError("COMPLIANCE_ATTESTATION_INVALID", "an attestation needs an owner (1-200 characters)");
    if (input.evidenceUrl !== undefined) {
      let url: URL | null = null;
      try {
        url = new URL(input.evidenceUrl);
      } catch {
        url = null;
      }
      if (!url || !["http:", "https:"].includes(url.protocol) || input.evidenceUrl.length > 2000) throw new MoatError("COMPLIANCE_ATTESTATION_INVALID", "--evidence must be an http(s) URL");
    }
    const expires = Date.parse(input.expiresAt);
    const now = this.now();
    if (!Number.isFinite(expires) || expires <= now) throw new MoatError("COMPLIANCE_ATTESTATION_INVALID", `the attestation would already be expired (${input.expiresAt})`);
    if (expires - now > MAX_ATTESTATION_MS) throw new MoatError("COMPLIANCE_ATTESTATION_INVALID", "an attestation lasts at most three years: attest again then");
    const saved = await this.options.store.transact(async (uow) => {
      const attestation = await uow.compliance.insertAttestation({
        standard: catalogue.standard,
        control: control.id,
        statement,
        evidenceUrl: input.evidenceUrl ?? null,
        owner,
        expiresAt: new Date(expires).toISOString(),
        createdAt: new Date(now).toISOString(),
        createdBy: input.actor,
      });
      await uow.events.append({
        type: "compliance.attested",
        severity: "info",
        actor: input.actor,
        subject: `${catalogue.standard}:${control.id}`,
        data: { id: attestation.id, owner, expiresAt: attestation.expiresAt, ...(attestation.evidenceUrl ? { evidenceUrl: attestation.evidenceUrl } : {}) },
      });
      return attestation;
    });
    return { ...saved, auditSeq: await this.options.store.eventSeq("compliance.attested", `${catalogue.standard}:${control.id}`) };
  }

  /** Attestations, newest first; `all` includes expired ones. */
  attestations(filter: { standard?: string; all?: boolean; limit?: number } = {}): Promise<Attestation[]> {
    if (filter.standard) catalogueOf(filter.standard);
    return this.options.store.compliance.attestations({
      ...(filter.standard ? { standard: filter.standard } : {}),
      ...(filter.all ? {} : { validAt: new Date(this.now()).toISOString() }),
      limit: pageLimit(filter.limit, 100),
    });
  }

  /** The dashboard's facts: score and failing controls per framework, evaluated now. */
  async scores(): Promise<FrameworkScore[]> {
    const out: FrameworkScore[] = [];
    for (const catalogue of CATALOGUES) {
      const { controls } = await this.evaluate(catalogue.standard);
      const { score, counts } = scoreOf(controls);
      out.push({ standard: catalogue.standard, title: catalogue.title, score, counts, failing: controls.filter((c) => c.status === "fail").map((c) => ({ id: c.id, title: c.title })) });
    }
    return out;
  }

  /**
   * A draft UK PSTI statement of compliance (Markdown) from the configuration (manufacturer, support
   * period, reporting contact) and the uk-psti controls' current status and attestations. A draft:
   * the manufacturer completes, signs and publishes it.
   */
  async pstiStatement(): Promise<string> {
    const { controls } = await this.evaluate("uk-psti");
    const inst = this.options.facts.installation;
    const missing = (value: string | null, what: string) => value ?? `[TO COMPLETE: ${what}]`;
    const lines = [
      "# Statement of compliance: DRAFT",
      "",
      "UK Product Security and Telecommunications Infrastructure (Security Requirements for Relevant Connectable Products) Regulations 2023.",
      "This draft was generated by Moat from its configuration and evidence; review, complete and sign it before publishing.",
      "",
      `- Manufacturer: ${missing(inst.manufacturer, "manufacturer name and address (compliance.manufacturer)")}`,
      `- Products: devices managed under the trust domain ${inst.trustDomain} [TO COMPLETE: product type and batch]`,
      `- Defined support period (security updates) ends: ${missing(inst.supportPeriodEnd, "date (compliance.supportPeriodEnd)")}`,
      `- Where to report security issues: ${missing(inst.reportingContact, "URL or e-mail (compliance.reportingContact)")}`,
      `- Drafted: ${new Date(this.now()).toISOString()}`,
      "",
      "## Schedule 1 security requirements",
      "",
    ];
    for (const control of controls) {
      lines.push(`### Paragraph ${control.id}: ${control.status === "pass" ? "met" : control.status === "fail" ? "NOT MET" : "to be confirmed"}`, "", control.title, "");
      for (const e of control.evidence) {
        if (e.kind === "attestation") lines.push(`- Attested by ${e.owner} (until ${e.expiresAt}): ${e.statement}${e.evidenceUrl ? ` (${e.evidenceUrl})` : ""}`);
        else if (e.kind === "posture") lines.push(`- Moat posture check ${e.check}: ${e.status}`);
        else if (e.kind === "config") lines.push(`- ${e.detail}`);
      }
      lines.push("");
    }
    lines.push("Signed: [TO COMPLETE: name, function, place, date]", "");
    return lines.join("\n");
  }
}
