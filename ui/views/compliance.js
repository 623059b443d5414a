// Compliance: score per framework with a drill-down to its controls (failing first) and their evidence,
// from the posture service's /v1/compliance API where it is installed.
import { api, ApiError, badge, h, notice, section, table } from "../lib.js";

const ORDER = ["fail", "manual", "pass", "not-applicable"];

function evidenceText(item) {
  if (typeof item === "string") return item;
  return item.summary ?? item.detail ?? item.description ?? JSON.stringify(item);
}

export async function render(ctx) {
  let scores;
  try {
    scores = await api("GET", "/v1/compliance/scores");
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 403))
      return h("div", {}, h("h1", {}, "Compliance"), notice(error.status === 404 ? "The posture and compliance service is not installed on this server." : "Your role may not read compliance scores."));
    throw error;
  }
  const detail = h("div", { id: "compliance-detail" });
  const show = async (standard) => {
    const result = await api("GET", `/v1/compliance/standards/${encodeURIComponent(standard)}/controls`);
    const controls = result.controls.slice().sort((a, b) => ORDER.indexOf(a.status) - ORDER.indexOf(b.status) || a.id.localeCompare(b.id));
    detail.replaceChildren(
      section(
        `Controls of ${standard}`,
        result.posture ? h("p", { class: "hint" }, `Posture run ${result.posture.run} at ${result.posture.runAt}.`) : notice("No posture run yet: controls that need one cannot pass (moat posture run)."),
        table(`Controls of ${standard}, failing first`, ["Control", "Status", "Title", "Coverage", "Evidence"], controls.map((c) => [c.id, badge(c.status), c.title, c.coverage ?? "—", (c.evidence ?? []).map(evidenceText).join("; ") || c.note || "—"]), "no controls."),
      ),
    );
  };
  if (ctx.params[0]) await show(ctx.params[0]);
  return h(
    "div",
    {},
    h("h1", {}, "Compliance"),
    section(
      "Frameworks",
      table(
        "Score per framework (passing controls of those that count)",
        ["Framework", "Score", "Pass", "Fail", "Manual", "Failing controls"],
        scores.map((f) => [
          h("button", { type: "button", class: "linkish", onclick: () => void show(f.standard) }, f.title ?? f.standard),
          `${f.score} %`,
          String(f.counts?.pass ?? 0),
          String(f.counts?.fail ?? 0),
          String(f.counts?.manual ?? 0),
          f.failing.map((c) => c.id).join(", ") || "none",
        ]),
        "none.",
      ),
    ),
    detail,
  );
}
