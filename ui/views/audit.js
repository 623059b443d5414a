// Audit: the security event log with filters, the hash chain's verification and the last signed checkpoint.
import { api, badge, h, notice, section, table, time } from "../lib.js";

export async function render() {
  const query = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const type = h("input", { id: "audit-type", name: "type", maxlength: "64", value: query.get("type") ?? "", placeholder: "e.g. cert.revoked" });
  const subject = h("input", { id: "audit-subject", name: "subject", maxlength: "256", value: query.get("subject") ?? "", placeholder: "device id, serial, token" });
  const results = h("div", { "aria-live": "polite" });
  const load = async () => {
    const params = new URLSearchParams({ limit: "100" });
    if (type.value.trim()) params.set("type", type.value.trim());
    if (subject.value.trim()) params.set("subject", subject.value.trim());
    const events = await api("GET", `/v1/audit/events?${params}`);
    results.replaceChildren(
      table("Security events, newest first", ["#", "Time", "Type", "Severity", "Actor", "Subject", "Data"], events.map((e) => [String(e.seq), time(e.time), e.type, badge(e.severity), e.actor, e.subject, h("code", { class: "data" }, JSON.stringify(e.data))]), "no event matches."),
    );
  };
  const [verify, checkpoint] = await Promise.all([api("GET", "/v1/audit/verify"), api("GET", "/v1/audit/checkpoint")]);
  await load();
  return h(
    "div",
    {},
    h("h1", {}, "Audit"),
    section(
      "Integrity",
      verify.ok
        ? notice(`Hash chain and Merkle tree verified: ${verify.entries} entries intact.`, "ok")
        : notice(`Verification FAILED: ${verify.problem ?? verify.code} (first bad entry ${verify.firstBadSeq ?? "?"}).`, "error"),
      checkpoint.checkpoint
        ? h("dl", { class: "facts" }, h("dt", {}, "Last checkpoint"), h("dd", {}, time(checkpoint.checkpoint.createdAt)), h("dt", {}, "Tree size"), h("dd", {}, String(checkpoint.checkpoint.size)), h("dt", {}, "Root hash"), h("dd", {}, h("code", {}, checkpoint.checkpoint.rootHash)))
        : notice("No signed checkpoint yet (moat serve signs one at start and on a schedule)."),
    ),
    section(
      "Events",
      h(
        "form",
        { class: "filters", role: "search", onsubmit: (event) => (event.preventDefault(), void load()) },
        h("label", { for: "audit-type" }, "Type"),
        type,
        h("label", { for: "audit-subject" }, "Subject"),
        subject,
        h("button", { type: "submit" }, "Filter"),
      ),
      results,
    ),
  );
}
