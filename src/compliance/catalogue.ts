/**
 * The control catalogues: versioned data files (catalogues/*.json), one per framework, each control
 * with its identifier, a title in Moat's own words, how it is covered and the evidence that decides it.
 */
import cra from "./catalogues/cra-annex-i.json" with { type: "json" };
import etsi from "./catalogues/etsi-en-303-645.json" with { type: "json" };
import iec from "./catalogues/iec-62443-4-2.json" with { type: "json" };
import seed from "./catalogues/moat-production-checklist.json" with { type: "json" };
import nist from "./catalogues/nist-ir-8259a.json" with { type: "json" };
import psti from "./catalogues/uk-psti.json" with { type: "json" };
import { MoatError } from "../errors.js";

/**
 * `automatic`: decided by posture checks and configuration facts alone. `evidence-assisted`: the
 * evidence can fail it, but passing it needs a manual attestation. `manual`: an attestation decides.
 * `not-applicable`: outside what a fleet control plane covers (the note says why).
 */
export type Coverage = "automatic" | "evidence-assisted" | "manual" | "not-applicable";
export const COVERAGES: readonly Coverage[] = ["automatic", "evidence-assisted", "manual", "not-applicable"];

/** What a control's status is decided from. `optional` evidence counts only when it could be evaluated. */
export type EvidenceSource = { posture: string; optional?: boolean } | { config: string; optional?: boolean } | { audit: string[] };

export interface Control {
  id: string;
  title: string;
  coverage: Coverage;
  evidence: EvidenceSource[];
  note?: string;
}

export interface Catalogue {
  standard: string;
  title: string;
  edition: string;
  catalogueVersion: number;
  /** How the titles were written (Moat's paraphrases, not quotations). */
  titles: string;
  controls: Control[];
}

export const CATALOGUES: readonly Catalogue[] = [etsi, nist, iec, cra, psti, seed] as Catalogue[];
/** The frameworks `moat compliance report --standard` accepts (the production checklist is listed too). */
export const STANDARDS: readonly string[] = CATALOGUES.map((c) => c.standard);

export function catalogueOf(standard: string): Catalogue {
  const found = CATALOGUES.find((c) => c.standard === standard);
  if (!found) throw new MoatError("COMPLIANCE_STANDARD_UNKNOWN", `no catalogue is called ${JSON.stringify(standard)}; one of: ${STANDARDS.join(", ")}`);
  return found;
}

/** A control named `STANDARD:ID` (e.g. `etsi-en-303-645:5.2-1`, `iec-62443-4-2:CR 1.8`). */
export function controlOf(qualified: string): { catalogue: Catalogue; control: Control } {
  const colon = qualified.indexOf(":");
  if (colon <= 0) throw new MoatError("COMPLIANCE_CONTROL_UNKNOWN", `name the control as STANDARD:ID (e.g. etsi-en-303-645:5.2-1), not ${JSON.stringify(qualified)}`);
  const standard = qualified.slice(0, colon);
  const id = qualified.slice(colon + 1);
  const catalogue = CATALOGUES.find((c) => c.standard === standard);
  const control = catalogue?.controls.find((c) => c.id === id);
  if (!catalogue || !control) throw new MoatError("COMPLIANCE_CONTROL_UNKNOWN", `no control ${JSON.stringify(id)} in ${JSON.stringify(standard)} (moat compliance controls --standard ${standard})`);
  return { catalogue, control };
}

export interface CoverageRow {
  standard: string;
  controls: number;
  automatic: number;
  "evidence-assisted": number;
  manual: number;
  "not-applicable": number;
}

/** Per framework: how many controls are automatic, evidence-assisted, manual or not applicable. */
export function coverageMatrix(): CoverageRow[] {
  return CATALOGUES.map((c) => {
    const row: CoverageRow = { standard: c.standard, controls: c.controls.length, automatic: 0, "evidence-assisted": 0, manual: 0, "not-applicable": 0 };
    for (const control of c.controls) row[control.coverage] += 1;
    return row;
  });
}
