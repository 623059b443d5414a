// Security: authentication failures, bans, denials and limit drops over 24 hours; who and what is denied;
// revocation-to-disconnect latency; open alerts and incidents where detection is installed; live feed.
import { api, badge, deviceLink, h, lineChart, notice, section, table, time } from "../lib.js";

export async function render(ctx) {
  const [summary, alerts, incidents] = await Promise.all([
    api("GET", "/v1/dashboard/security"),
    ctx.allowed["alerts:read"] ? api("GET", "/v1/alerts?open=true").catch(() => null) : null,
    ctx.allowed["incidents:read"] ? api("GET", "/v1/incidents?status=open").catch(() => null) : null,
  ]);
  const times = summary.hours.map((x) => x.at);
  const chart = await lineChart("Per hour, last 24 hours", times, [
    ["Authentication failures", summary.hours.map((x) => x.authFailures)],
    ["Bans", summary.hours.map((x) => x.bans)],
    ["Denials", summary.hours.map((x) => x.denials)],
    ["Rate-limit drops", summary.hours.map((x) => x.limitDrops)],
  ]);
  const totals = summary.hours.reduce((a, x) => ({ f: a.f + x.authFailures, b: a.b + x.bans, d: a.d + x.denials, l: a.l + x.limitDrops }), { f: 0, b: 0, d: 0, l: 0 });
  const latencies = summary.revocations.map((r) => r.latencyMs).sort((a, b) => a - b);
  const live = h("ol", { class: "live-feed", id: "live-feed", "aria-live": "polite" });
  ctx.onEvent((event) => {
    if (!/^(auth\.|acl\.|broker\.|cert\.revoked|device\.disconnected|alert\.)/.test(event.type)) return;
    live.prepend(h("li", {}, `${time(event.time)} `, badge(event.severity), ` ${event.type} `, event.subject));
    while (live.children.length > 50) live.lastChild.remove();
  });
  const alertRows = alerts ? (Array.isArray(alerts) ? alerts : alerts.alerts ?? []) : [];
  const incidentRows = incidents ? (Array.isArray(incidents) ? incidents : incidents.incidents ?? []) : [];
  return h(
    "div",
    {},
    h("h1", {}, "Security"),
    h(
      "div",
      { class: "tiles" },
      ...[
        ["Authentication failures (24 h)", totals.f],
        ["Bans (24 h)", totals.b],
        ["Denials (24 h)", totals.d],
        ["Rate-limit drops (24 h)", totals.l],
        ["Revocation → disconnect (median)", latencies.length ? `${latencies[Math.floor(latencies.length / 2)]} ms` : "—"],
      ].map(([label, value]) => h("div", { class: "tile" }, h("span", { class: "tile-label" }, label), h("strong", { class: "tile-value" }, String(value)))),
    ),
    section("Over time", chart),
    alerts || incidents
      ? section(
          "Open alerts and incidents",
          alerts ? table("Open alerts", ["Rule", "Subject", "Severity", "Count", "Last seen"], alertRows.map((a) => [a.rule, a.subject?.kind === "device" ? deviceLink(a.subject.id) : `${a.subject?.kind ?? ""} ${a.subject?.id ?? ""}`, badge(a.severity), String(a.count), time(a.lastSeen)]), "none open.") : null,
          incidents ? table("Open incidents", ["Id", "Title", "Severity", "Alerts", "Opened", "By"], incidentRows.map((i) => [i.id, i.title ?? "—", badge(i.severity ?? "—"), String(i.alertIds?.length ?? 0), time(i.openedAt), i.openedBy ?? "—"]), "none open.") : null,
        )
      : section("Open alerts and incidents", notice("Detection is not installed on this server: no alerts or incidents to show.")),
    section("Most denied devices", table("Most denied devices (24 h)", ["Device", "Denials"], summary.topDeniedDevices.map((d) => [deviceLink(d.device), String(d.count)]), "no denials.")),
    section("Most denied topics", table("Most denied topics (24 h)", ["Topic", "Denials"], summary.topDeniedTopics.map((t) => [h("code", {}, t.topic), String(t.count)]), "no denials.")),
    section("Rate-limit drops", table("Broker limit drops (24 h)", ["Limit", "Events"], summary.limitDrops.map((d) => [d.reason, String(d.count)]), "none.")),
    section("Revocation to disconnect", table("Revoked while connected", ["Device", "Serial", "Revoked", "Disconnected", "Latency"], summary.revocations.map((r) => [deviceLink(r.device), r.serial, time(r.revokedAt), time(r.disconnectedAt), `${r.latencyMs} ms`]), "no revoked device was connected.")),
    section("Live", live),
    h("p", { class: "hint" }, `From the newest events of each type in the audit log (up to 1,000 per type); since ${time(summary.since)}.`),
  );
}
