/**
 * The compliance report as a document: JSON signed with the installation's audit key (Ed25519 over the
 * canonical JSON of the report without its `signature` member), its hash, and the Markdown and
 * self-contained HTML renderings that carry that hash.
 */
import { createHash, createPublicKey, verify as verifySignature } from "node:crypto";
import { parseVerifierKey, type AuditSigner } from "../audit/index.js";
import { canonicalJsonBytes } from "../crypto/index.js";
import { MoatError } from "../errors.js";
import type { ControlResult } from "./evaluate.js";
import type { ControlStatus } from "./ports.js";

export const REPORT_FORMAT = "moat-compliance-report/1";

export interface ReportSignature {
  algorithm: "Ed25519";
  /** Signed-note key id of the audit key (hex). */
  keyId: string;
  /** Raw Ed25519 public key, base64. */
  publicKey: string;
  /** The same key as `moat audit key export` prints it. */
  verifierKey: string;
  /** Signature over the canonical JSON of the report without `signature`, base64. */
  value: string;
}

export interface ComplianceReport {
  format: typeof REPORT_FORMAT;
  id: string;
  standard: { id: string; title: string; edition: string; catalogueVersion: number; titles: string };
  installation: { trustDomain: string; manufacturer: string | null };
  generatedAt: string;
  generatedBy: string;
  posture: { run: string; runAt: string; auditSeq: number | null } | null;
  score: { percent: number; counts: Record<ControlStatus, number> };
  changes: {
    previous: { id: string; generatedAt: string; hash: string; percent: number } | null;
    scoreDelta: number | null;
    controls: { id: string; from: ControlStatus | null; to: ControlStatus }[];
  };
  controls: ControlResult[];
  signature?: ReportSignature;
}

function unsigned(report: ComplianceReport): Omit<ComplianceReport, "signature"> {
  const { signature: _signature, ...rest } = report;
  return rest;
}

/** Signs the report in place with the audit key. */
export async function signReport(report: ComplianceReport, signer: AuditSigner): Promise<ComplianceReport> {
  const value = await signer.sign(canonicalJsonBytes(unsigned(report)));
  return { ...unsigned(report), signature: { algorithm: "Ed25519", keyId: signer.keyId.toString("hex"), publicKey: signer.publicKey.toString("base64"), verifierKey: signer.verifierKey, value: Buffer.from(value).toString("base64") } };
}

/** SHA-256 (hex) of the canonical JSON of the whole signed report: what the audit log, HTML and Markdown cite. */
export function reportHash(report: ComplianceReport): string {
  return createHash("sha256").update(canonicalJsonBytes(report)).digest("hex");
}

export interface VerifyOutcome {
  ok: boolean;
  hash: string | null;
  keyId: string | null;
  problem?: string;
}

/**
 * Checks a report file's signature, and that it was made with `trustedKey` (a verifier key as
 * `moat audit key export` prints it). Any edit of the content or of the signature block fails.
 */
export function verifyReportText(text: string, trustedKey: string): VerifyOutcome {
  let report: ComplianceReport;
  try {
    report = JSON.parse(text) as ComplianceReport;
  } catch {
    throw new MoatError("COMPLIANCE_REPORT_INVALID", "the file is not JSON (only the JSON report is signed; HTML and Markdown carry its hash)");
  }
  if (!report || typeof report !== "object" || report.format !== REPORT_FORMAT) throw new MoatError("COMPLIANCE_REPORT_INVALID", `the file is not a ${REPORT_FORMAT} document`);
  const signature = report.signature;
  if (!signature || signature.algorithm !== "Ed25519" || typeof signature.value !== "string" || typeof signature.publicKey !== "string")
    throw new MoatError("COMPLIANCE_REPORT_INVALID", "the report carries no Ed25519 signature member");
  const trusted = parseVerifierKey(trustedKey);
  const publicKey = Buffer.from(signature.publicKey, "base64");
  const hash = reportHash(report);
  if (!publicKey.equals(trusted.publicKey)) return { ok: false, hash, keyId: signature.keyId ?? null, problem: `signed by key ${signature.keyId}, not by the trusted key ${trusted.keyId.toString("hex")}` };
  const key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: publicKey.toString("base64url") }, format: "jwk" });
  let valid = false;
  try {
    valid = verifySignature(null, canonicalJsonBytes(unsigned(report)), key, Buffer.from(signature.value, "base64"));
  } catch {
    valid = false;
  }
  return valid ? { ok: true, hash, keyId: signature.keyId } : { ok: false, hash, keyId: signature.keyId, problem: "the signature does not match the content: the report was changed after it was signed" };
}

const STATUS_LABEL: Record<ControlStatus, string> = { pass: "PASS", fail: "FAIL", manual: "MANUAL", "not-applicable": "N/A" };

function evidenceLine(item: ControlResult["evidence"][number]): string {
  switch (item.kind) {
    case "posture":
      return `posture check \`${item.check}\`: ${item.status}${item.findings ? ` (${item.findings} open finding${item.findings === 1 ? "" : "s"})` : ""}${item.reason ? ` (${item.reason})` : ""}; run ${item.run}${item.auditSeq !== null ? `, audit seq ${item.auditSeq}` : ""}`;
    case "config":
      return `configuration \`${item.fact}\`: ${item.ok === null ? "unknown" : item.ok ? "ok" : "not met"} (${item.detail})`;
    case "audit":
      return `audit events \`${item.type}\`: ${item.latestSeq === null ? "none recorded" : `latest at seq ${item.latestSeq}`}`;
    case "attestation":
      return `attestation #${item.id} by ${item.owner}, valid until ${item.expiresAt}${item.auditSeq !== null ? ` (audit seq ${item.auditSeq})` : ""}: ${item.statement}${item.evidenceUrl ? ` (${item.evidenceUrl})` : ""}`;
  }
}

function mdEscape(text: string): string {
  return text.replace(/[|\\`*_[\]<>]/g, (c) => `\\${c}`).replace(/\r?\n/g, " ");
}

/** Markdown rendering; it names the signed JSON report's hash (the JSON is the signed record). */
export function reportMarkdown(report: ComplianceReport, hash: string): string {
  const lines = [
    `# Compliance report: ${mdEscape(report.standard.title)}`,
    "",
    `- Report: ${report.id}, generated ${report.generatedAt} by ${mdEscape(report.generatedBy)}`,
    `- Installation: ${mdEscape(report.installation.trustDomain)}${report.installation.manufacturer ? ` (${mdEscape(report.installation.manufacturer)})` : ""}`,
    `- Catalogue: ${report.standard.id} version ${report.standard.catalogueVersion}, ${mdEscape(report.standard.edition)}`,
    `- Signed JSON report SHA-256: \`${hash}\`${report.signature ? ` (Ed25519, audit key ${report.signature.keyId})` : ""}`,
    `- Score: ${report.score.percent}% (${report.score.counts.pass} pass, ${report.score.counts.fail} fail, ${report.score.counts.manual} manual, ${report.score.counts["not-applicable"]} not applicable)`,
    `- Change since previous report: ${report.changes.previous ? `${report.changes.scoreDelta! >= 0 ? "+" : ""}${report.changes.scoreDelta} points since ${report.changes.previous.id} (${report.changes.previous.generatedAt}); ${report.changes.controls.length} control(s) changed` : "first report for this standard"}`,
    "",
    `> ${mdEscape(report.standard.titles)}`,
    "",
    "| Control | Title | Coverage | Status |",
    "|---|---|---|---|",
    ...report.controls.map((c) => `| ${mdEscape(c.id)} | ${mdEscape(c.title)} | ${c.coverage} | ${STATUS_LABEL[c.status]} |`),
    "",
    "## Evidence",
    "",
  ];
  for (const control of report.controls) {
    lines.push(`### ${mdEscape(control.id)}: ${STATUS_LABEL[control.status]}`, "");
    if (control.note) lines.push(`_${mdEscape(control.note)}_`, "");
    if (control.evidence.length === 0) lines.push("- no automatic evidence: a manual attestation decides (moat compliance attest)");
    for (const item of control.evidence) lines.push(`- ${mdEscape(evidenceLine(item))}`);
    lines.push("");
  }
  return lines.join("\n");
}

function html(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Self-contained HTML (inline style only, no script, no external asset) that prints well. */
export function reportHtml(report: ComplianceReport, hash: string): string {
  const rows = report.controls
    .map(
      (c) =>
        `<tr class="${c.status}"><td>${html(c.id)}</td><td>${html(c.title)}${c.note ? `<div class="note">${html(c.note)}</div>` : ""}</td><td>${c.coverage}</td><td class="status">${STATUS_LABEL[c.status]}</td><td><ul>${c.evidence.map((e) => `<li>${html(evidenceLine(e))}</li>`).join("")}</ul></td></tr>`,
    )
    .join("\n");
  const changes = report.changes.previous
    ? `${report.changes.scoreDelta! >= 0 ? "+" : ""}${report.changes.scoreDelta} points since report ${html(report.changes.previous.id)} (${html(report.changes.previous.generatedAt)}); ${report.changes.controls.length} control(s) changed`
    : "first report for this standard";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Compliance report: ${html(report.standard.title)}</title>
<style>
body{font:11pt/1.4 system-ui,sans-serif;margin:2em;color:#111}
h1{font-size:16pt;margin:0 0 .5em}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em}
dt{font-weight:600}
code{font-family:ui-monospace,monospace;word-break:break-all}
table{border-collapse:collapse;width:100%;margin-top:1em}
th,td{border:1px solid #999;padding:.3em .5em;vertical-align:top;text-align:left}
th{background:#eee}
tr{page-break-inside:avoid;break-inside:avoid}
td.status{font-weight:700;white-space:nowrap}
tr.pass td.status{color:#05620b}
tr.fail td.status{color:#a00000}
tr.manual td.status{color:#7a5200}
.note{font-size:9pt;color:#444}
ul{margin:0;padding-left:1.1em}
@media print{body{margin:0;font-size:9pt}th{background:none}a{color:inherit}}
</style></head>
<body>
<h1>Compliance report: ${html(report.standard.title)}</h1>
<dl>
<dt>Report</dt><dd>${html(report.id)}, generated ${html(report.generatedAt)} by ${html(report.generatedBy)}</dd>
<dt>Installation</dt><dd>${html(report.installation.trustDomain)}${report.installation.manufacturer ? ` (${html(report.installation.manufacturer)})` : ""}</dd>
<dt>Catalogue</dt><dd>${html(report.standard.id)} version ${report.standard.catalogueVersion}, ${html(report.standard.edition)}</dd>
<dt>Signed JSON SHA-256</dt><dd><code>${hash}</code>${report.signature ? ` (Ed25519, audit key ${html(report.signature.keyId)})` : ""}</dd>
<dt>Score</dt><dd>${report.score.percent}% (${report.score.counts.pass} pass, ${report.score.counts.fail} fail, ${report.score.counts.manual} manual, ${report.score.counts["not-applicable"]} not applicable)</dd>
<dt>Change</dt><dd>${changes}</dd>
</dl>
<p class="note">${html(report.standard.titles)} The JSON report is the signed record; this page carries its hash. Check it with <code>moat compliance verify REPORT.json --key audit.vkey</code>.</p>
<table><thead><tr><th>Control</th><th>Title</th><th>Coverage</th><th>Status</th><th>Evidence</th></tr></thead>
<tbody>
${rows}
</tbody></table>
</body></html>
`;
}
