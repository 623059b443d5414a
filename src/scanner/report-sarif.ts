/**
 * SARIF 2.1.0 (OASIS, sarif-v2.1.0-os) for CI pipelines. A network finding has no source file, so
 * each result is located by a `tcp://host:port` / `udp://host:port` artifact URI and a logical
 * location of the same name; rules carry the remediation as help text and the OWASP/ETSI
 * mappings as tags, and `security-severity` lets code-scanning front ends rank them.
 */
import { FINDING_RULES, type FindingRule } from "./finding-rules.js";
import type { Finding, ScanResult, Severity } from "./types.js";

const SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json";

const LEVEL: Record<Severity, "error" | "warning" | "note"> = { critical: "error", high: "error", medium: "warning", low: "note", info: "note" };
const SECURITY_SEVERITY: Record<Severity, string> = { critical: "9.5", high: "8.0", medium: "5.5", low: "3.0", info: "0.0" };

function ruleDescriptor(rule: FindingRule) {
  return {
    id: rule.id,
    name: rule.id.replace(/(^|-)([a-z0-9])/g, (_, __, c: string) => c.toUpperCase()),
    shortDescription: { text: rule.title },
    fullDescription: { text: `${rule.title}. OWASP IoT Top 10 (2018): ${rule.owasp.join(", ")}; ETSI EN 303 645: ${rule.etsi.join(", ")}.` },
    help: { text: rule.remediation },
    defaultConfiguration: { level: LEVEL[rule.severity] },
    properties: {
      tags: ["security", ...rule.owasp.map((c) => `OWASP-IoT-2018-${c}`), ...rule.etsi.map((p) => `ETSI-EN-303-645-${p}`)],
      "security-severity": SECURITY_SEVERITY[rule.severity],
      severity: rule.severity,
    },
  };
}

function locationName(f: Finding): string {
  return `${f.transport}://${f.address.includes(":") ? `[${f.address}]` : f.address}:${f.port}`;
}

/** The scan as a SARIF 2.1.0 log object (serialise with JSON.stringify). */
export function toSarif(result: ScanResult, toolVersion: string): Record<string, unknown> {
  const rules = [...FINDING_RULES.values()];
  const index = new Map(rules.map((rule, i) => [rule.id, i]));
  return {
    $schema: SARIF_SCHEMA,
    version: "2.1.0",
    runs: [
      {
        tool: { driver: { name: "moat-scanner", semanticVersion: toolVersion, version: toolVersion, rules: rules.map(ruleDescriptor) } },
        invocations: [{ executionSuccessful: result.status === "completed", startTimeUtc: result.startedAt, endTimeUtc: result.finishedAt }],
        results: result.findings.map((f) => ({
          ruleId: f.id,
          ruleIndex: index.get(f.id),
          level: LEVEL[f.severity],
          message: { text: f.evidence },
          locations: [
            {
              physicalLocation: { artifactLocation: { uri: locationName(f) } },
              logicalLocations: [{ name: locationName(f), kind: "module" }],
            },
          ],
          partialFingerprints: { "moat/finding": `${f.id}:${locationName(f)}` },
          properties: { severity: f.severity, owasp: f.owasp, etsi: f.etsi },
        })),
      },
    ],
  };
}
