// OTA: campaigns with stage progress and failure rate; pause, resume and abort by permission.
import { api, ApiError, badge, h, section, table, time } from "../lib.js";

export async function render(ctx) {
  const { campaigns } = await api("GET", "/v1/ota/campaigns");
  const status = h("p", { role: "status", id: "ota-result" });
  const control = (id, verb, label) =>
    h(
      "button",
      {
        type: "button",
        onclick: async () => {
          try {
            await api("POST", `/v1/ota/campaigns/${encodeURIComponent(id)}/${verb}`);
            ctx.refresh();
          } catch (error) {
            status.textContent = `${label} refused: ${error instanceof ApiError ? `${error.code} — ${error.message}` : String(error)}`;
          }
        },
      },
      label,
    );
  const rows = campaigns.map((c) => {
    const counts = Object.entries(c.counts ?? {}).map(([k, v]) => `${k} ${v}`).join(", ");
    const actions = [];
    if (ctx.allowed["ota:write"]) {
      if (c.status === "running") actions.push(control(c.id, "pause", "Pause"));
      if (c.status === "paused") actions.push(control(c.id, "resume", "Resume"));
      if (c.status === "running" || c.status === "paused") actions.push(control(c.id, "abort", "Abort"));
    }
    return [
      c.id,
      c.group,
      badge(c.status),
      `${(c.release?.version ?? c.release?.target ?? "") || "—"}`,
      `stage ${Number(c.stage) + 1} of ${c.stages?.length ?? "?"} (${c.stagePercent ?? "?"} %)`,
      h("progress", { max: "100", value: String(c.stagePercent ?? 0), "aria-label": `stage progress of ${c.id}` }),
      `${Math.round((c.failureRate ?? 0) * 1000) / 10} % (max ${Math.round((c.maxFailureRate ?? 0) * 1000) / 10} %)`,
      counts || "—",
      c.pauseReason ?? "",
      time(c.updatedAt),
      actions.length ? h("span", { class: "row-actions" }, actions) : "",
    ];
  });
  return h("div", {}, h("h1", {}, "OTA"), status, section("Campaigns", table("OTA campaigns, newest first", ["Campaign", "Group", "Status", "Release", "Stage", "Progress", "Failure rate", "Devices", "Pause reason", "Updated", ""], rows, "no campaigns (moat ota campaign create).")));
}
