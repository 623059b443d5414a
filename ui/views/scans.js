// Scans: each scan run with its findings by severity; a run's findings on demand.
import { api, badge, h, section, table, time } from "../lib.js";

const SEVERITIES = ["critical", "high", "medium", "low", "info"];

export async function render(ctx) {
  const runs = await api("GET", "/v1/scans?limit=50");
  const detail = h("div", { id: "scan-detail" });
  const show = async (id) => {
    const run = await api("GET", `/v1/scans/${encodeURIComponent(id)}`);
    const findings = (run.findings ?? []).slice().sort((a, b) => SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity));
    detail.replaceChildren(section(`Findings of scan ${id}`, table(`Findings of scan ${id}`, ["Severity", "Target", "Port", "Finding", "Detail"], findings.map((f) => [badge(f.severity), f.address ?? f.target ?? "—", f.port === undefined || f.port === null ? "—" : String(f.port), f.title ?? f.kind ?? f.check ?? "—", f.detail ?? f.description ?? ""]), "no findings.")));
  };
  const rows = runs.map((r) => [
    h("button", { type: "button", class: "linkish", onclick: () => void show(r.id) }, r.id),
    time(r.startedAt),
    r.status,
    r.targets.join(", "),
    ...SEVERITIES.map((s) => String(r.counts?.[s] ?? 0)),
    String(r.openPorts ?? 0),
  ]);
  if (ctx.params[0]) await show(ctx.params[0]);
  return h("div", {}, h("h1", {}, "Scans"), section("Scan runs", table("Scan runs, newest first", ["Run", "Started", "Status", "Targets", ...SEVERITIES.map((s) => s[0].toUpperCase() + s.slice(1)), "Open ports"], rows, "no scans yet (moat scan run).")), detail);
}
