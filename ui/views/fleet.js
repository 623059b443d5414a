// Fleet: devices by status and group, connected now, certificates expiring soon, firmware versions.
import { api, bars, h, notice, section, sizeBars, table, tiles } from "../lib.js";

export async function render(ctx) {
  const [fleet, certs, firmware] = await Promise.all([
    api("GET", "/v1/dashboard/fleet"),
    ctx.allowed["certs:read"] ? api("GET", "/v1/dashboard/certificates") : null,
    api("GET", "/v1/dashboard/firmware"),
  ]);
  const connected = h("strong", { class: "tile-value", id: "connected-count" }, String(fleet.connected));
  const root = h(
    "div",
    {},
    h("h1", {}, "Fleet"),
    h(
      "div",
      { class: "tiles" },
      h("div", { class: "tile" }, h("span", { class: "tile-label" }, "Devices"), h("strong", { class: "tile-value" }, String(fleet.total))),
      h("div", { class: "tile" }, h("span", { class: "tile-label" }, "Connected now"), connected),
      ...(certs
        ? [
            h("a", { class: "tile", href: "#/certificates" }, h("span", { class: "tile-label" }, "Certificates expiring in 7 days"), h("strong", { class: "tile-value" }, String(certs.certificates.expiringIn7Days))),
            h("a", { class: "tile", href: "#/certificates" }, h("span", { class: "tile-label" }, "Expiring in 30 days"), h("strong", { class: "tile-value" }, String(certs.certificates.expiringIn30Days))),
          ]
        : []),
    ),
    section("Devices by status", bars("Devices by status", Object.entries(fleet.byStatus))),
    section(
      "Devices by group",
      table(
        "Largest groups",
        ["Group", "Devices"],
        fleet.byGroup.map((g) => [g.group === null ? "(no group)" : h("a", { href: `#/devices?group=${encodeURIComponent(g.group)}` }, g.group), String(g.count)]),
      ),
    ),
    section(
      "Firmware",
      firmware.reported > 0
        ? [
            tiles([
              ["Devices reporting firmware", firmware.reported],
              ["On the latest security version", `${firmware.latestSecurityShare} %`, `security version ${firmware.latestSecurityVersion ?? "—"}: ${firmware.onLatest} devices`],
            ]),
            table("Firmware versions", ["Version", "Security version", "Devices"], firmware.versions.map((v) => [v.version, String(v.securityVersion), String(v.count)])),
          ]
        : notice("No device has reported its firmware yet (the OTA client reports after each boot, the device SDK at start)."),
    ),
  );
  // Live: connected now follows device.connected / device.disconnected without a reload.
  let pending = null;
  ctx.onEvent((event) => {
    if (event.type !== "device.connected" && event.type !== "device.disconnected") return;
    clearTimeout(pending);
    pending = setTimeout(async () => {
      const next = await api("GET", "/v1/dashboard/fleet");
      connected.textContent = String(next.connected);
    }, 200);
  });
  sizeBars(root);
  return root;
}
