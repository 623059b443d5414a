// Compliance: score per framework with drill-down to failing controls and evidence, where the posture
// service is installed.
import { api, ApiError, badge, h, notice, section, table } from "../lib.js";

export async function render(ctx) {
  let frameworks;
  try {
    frameworks = await api("GET", "/v1/compliance");
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 403)) return h("div", {}, h("h1", {}, "Compliance"), notice(error.status === 404 ? "The posture and compliance service is not installed on this server." : "Your role may not read compliance scores."));
    throw error;
  }
  const list = Array.isArray(frameworks) ? frameworks : frameworks.frameworks ?? [];
  const detail = h("div", { id: "compliance-detail" });
  const show = async (id) => {
    const framework = await api("GET", `/v1/compliance/${encodeURIComponent(id)}`);
    const controls = framework.controls ?? [];
    detail.replaceChildren(section(`Controls of ${framework.name ?? id}`, table("Controls", ["Control", "Status", "Title", "Evidence"], controls.map((c) => [c.id, badge(c.status), c.title ?? "", (c.evidence ?? []).map((e) => (typeof e === "string" ? e : JSON.stringify(e))).join("; ")]), "no controls.")));
  };
  if (ctx.params[0]) await show(ctx.params[0]);
  return h(
    "div",
    {},
    h("h1", {}, "Compliance"),
    section("Frameworks", table("Score per framework", ["Framework", "Score", "Passing", "Failing"], list.map((f) => [h("button", { type: "button", class: "linkish", onclick: () => void show(f.id) }, f.name ?? f.id), `${f.score} %`, String(f.passing ?? "—"), String(f.failing ?? "—")]), "none.")),
    detail,
  );
}
