// Devices: a searchable list paged with the API's keyset cursor (fast at 100,000 devices).
import { api, badge, deviceLink, h, table, time } from "../lib.js";

const STATUSES = ["", "pending", "active", "suspended", "quarantined", "decommissioned"];

export async function render(ctx) {
  const query = new URLSearchParams(location.hash.split("?")[1] ?? "");
  const cursors = [];
  let after = null;
  const search = h("input", { id: "device-search", type: "search", name: "search", maxlength: "128", value: query.get("search") ?? "" });
  const status = h("select", { id: "device-status", name: "status" }, STATUSES.map((s) => h("option", { value: s }, s || "any")));
  status.value = query.get("status") ?? "";
  const group = query.get("group");
  const results = h("div", { "aria-live": "polite" });
  const previous = h("button", { type: "button", disabled: true }, "Previous page");
  const next = h("button", { type: "button", disabled: true }, "Next page");

  async function load() {
    const params = new URLSearchParams({ limit: "50" });
    if (search.value.trim()) params.set("search", search.value.trim());
    if (status.value) params.set("status", status.value);
    if (group) params.set("group", group);
    if (after) params.set("after", after);
    const page = await api("GET", `/v1/devices?${params}`);
    results.replaceChildren(
      table(
        `Devices${group ? ` in group ${group}` : ""}`,
        ["Device", "Name", "Status", "Group", "Role", "Last seen", "Address"],
        page.devices.map((d) => [deviceLink(d.id), d.name, badge(d.status), d.group ?? "—", d.role, time(d.lastSeenAt), d.lastSeenAddress ?? "—"]),
        "no device matches.",
      ),
    );
    next.disabled = page.next === null;
    previous.disabled = cursors.length === 0;
    next.onclick = () => {
      cursors.push(after);
      after = page.next;
      void load();
    };
  }
  previous.onclick = () => {
    after = cursors.pop() ?? null;
    void load();
  };
  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      onsubmit: (event) => {
        event.preventDefault();
        cursors.length = 0;
        after = null;
        void load();
      },
    },
    h("label", { for: "device-search" }, "Search id or name"),
    search,
    h("label", { for: "device-status" }, "Status"),
    status,
    h("button", { type: "submit" }, "Search"),
  );
  await load();
  // Registry changes (not every connect) refresh the page shown, at most once a second.
  let pending = null;
  ctx.onEvent((event) => {
    if (!["device.created", "device.updated", "device.status_changed"].includes(event.type) || pending) return;
    pending = setTimeout(() => {
      pending = null;
      void load();
    }, 1000);
  });
  return h("div", {}, h("h1", {}, "Devices"), form, results, h("div", { class: "pager" }, previous, next));
}
