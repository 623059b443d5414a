/** The compliance domain's door: control catalogues as data, evaluation, signed reports, attestations. */
export { CATALOGUES, COVERAGES, STANDARDS, catalogueOf, controlOf, coverageMatrix, type Catalogue, type Control, type Coverage, type CoverageRow, type EvidenceSource } from "./catalogue.js";
export { evaluateCatalogue, evaluateControl, scoreOf, type ControlResult, type EvidenceItem } from "./evaluate.js";
export { REPORT_FORMAT, reportHash, reportHtml, reportMarkdown, signReport, verifyReportText, type ComplianceReport, type ReportSignature, type VerifyOutcome } from "./report.js";
export { ComplianceService, type ComplianceServiceOptions, type FrameworkScore } from "./service.js";
export { configFacts, type FactInputs } from "./facts.js";
export type { Attestation, ComplianceFacts, ComplianceRepository, ComplianceStore, ComplianceUnitOfWork, ConfigFact, ControlStatus, ReportSummary, StoredReport } from "./ports.js";
