/** The human report: open ports with what answered on them, then findings, most severe first. */
import type { PortResult, ScanResult } from "./types.js";

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join("  ")).join("\n");
}

function describeService(port: PortResult): string {
  const service = port.service;
  if (!service) return port.state === "open" ? "" : port.state;
  const parts: string[] = [service.overTls && service.name !== "tls" ? `${service.name}+tls` : service.name];
  if (service.tls?.negotiatedProtocol) parts.push(service.tls.negotiatedProtocol);
  if (service.tls?.clientCertificateRequired) parts.push("client cert required");
  if (service.http) parts.push(`HTTP ${service.http.status}${service.http.server ? ` ${service.http.server}` : ""}`);
  if (service.mqtt) parts.push(service.mqtt.anonymousReturnCode === 0 ? "anonymous allowed" : `anonymous refused (${service.mqtt.anonymousReturnCode})`);
  if (service.coap) parts.push(`CoAP ${service.coap.responseCode}`);
  if (service.banner) parts.push(`"${service.banner.slice(0, 40)}"`);
  return parts.join(", ");
}

/** Renders a scan result for a terminal. */
export function formatScanTable(result: ScanResult): string {
  const lines: string[] = [];
  lines.push(`Scan of ${result.targets.join(" ")} (ports ${result.portSpec}): ${result.status}, ${result.startedAt} → ${result.finishedAt}`);
  const portRows = [["HOST", "PORT", "STATE", "SERVICE"]];
  for (const host of result.hosts) {
    for (const port of host.ports) portRows.push([host.hostname ? `${host.address} (${host.hostname})` : host.address, `${port.port}/${port.transport}`, port.state, describeService(port)]);
  }
  lines.push("");
  lines.push(portRows.length > 1 ? table(portRows) : "No open ports found.");
  lines.push("");
  if (result.findings.length === 0) {
    lines.push("No findings.");
  } else {
    const counts = new Map<string, number>();
    for (const f of result.findings) counts.set(f.severity, (counts.get(f.severity) ?? 0) + 1);
    lines.push(`Findings: ${[...counts].map(([severity, count]) => `${count} ${severity}`).join(", ")}`);
    lines.push(table([["SEVERITY", "ID", "WHERE", "TITLE"], ...result.findings.map((f) => [f.severity.toUpperCase(), f.id, `${f.address}:${f.port}/${f.transport}`, f.title])]));
    lines.push("");
    for (const f of result.findings) {
      lines.push(`[${f.severity.toUpperCase()}] ${f.id} on ${f.address}:${f.port}/${f.transport}`);
      lines.push(`  evidence:    ${f.evidence}`);
      lines.push(`  remediation: ${f.remediation}`);
      lines.push(`  OWASP IoT:   ${f.owasp.join(", ")}   ETSI EN 303 645: ${f.etsi.join(", ")}`);
    }
  }
  if (result.status !== "completed") lines.push(`\nThe scan ${result.status === "timed-out" ? "hit its time limit" : "was stopped"}: results are partial.`);
  return lines.join("\n");
}
