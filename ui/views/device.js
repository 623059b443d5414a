// One device: status, role, groups, certificates, credentials, last seen, live session, recent events,
// alerts and firmware; actions by permission (the API refuses them anyway).
import { api, ApiError, badge, certLink, h, notice, section, table, time } from "../lib.js";

const REASONS = ["unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "privilegeWithdrawn"];

export async function render(ctx) {
  const id = ctx.params[0];
  const enc = encodeURIComponent(id);
  const [device, sessions, certs, credentials, events, alerts, firmware] = await Promise.all([
    api("GET", `/v1/devices/${enc}`),
    ctx.allowed["sessions:read"] ? api("GET", `/v1/sessions?device=${enc}&limit=10`) : null,
    ctx.allowed["certs:read"] ? api("GET", `/v1/certificates?deviceId=${enc}&limit=50`) : null,
    api("GET", `/v1/devices/${enc}/credentials`),
    ctx.allowed["audit:read"] ? api("GET", `/v1/audit/events?subject=${enc}&limit=20`) : null,
    ctx.allowed["alerts:read"] ? api("GET", `/v1/alerts?device=${enc}`).catch(() => null) : null,
    api("GET", `/v1/devices/${enc}/firmware`),
  ]);
  const status = h("div", { role: "status", class: "action-result", id: "action-result" });
  const connected = h("span", { id: "device-connected" }, sessions && sessions.sessions.length > 0 ? "yes" : "no");

  async function act(label, call) {
    status.textContent = `${label}…`;
    try {
      await call();
      status.textContent = `${label}: done.`;
      setTimeout(() => ctx.refresh(), 300);
    } catch (error) {
      status.textContent = `${label} refused: ${error instanceof ApiError ? `${error.code} — ${error.message}` : String(error)}`;
    }
  }

  const actions = [];
  if (ctx.allowed["devices:write"]) {
    const setStatus = (to, label) => h("button", { type: "button", onclick: () => act(label, () => api("POST", `/v1/devices/${enc}/status`, { status: to, reason: `dashboard: ${label.toLowerCase()}` })) }, label);
    if (device.status !== "suspended") actions.push(setStatus("suspended", "Suspend"));
    if (device.status !== "quarantined") actions.push(setStatus("quarantined", "Quarantine"));
    if (device.status !== "active") actions.push(setStatus("active", "Reactivate"));
  }
  const tokenOut = h("output", { id: "enrollment-token", class: "secret" });
  if (ctx.allowed["certs:issue"])
    actions.push(
      h(
        "button",
        {
          type: "button",
          onclick: () =>
            act("Create enrollment token", async () => {
              const created = await api("POST", "/v1/enrollment-tokens", { deviceId: id, ttl: "1h" });
              tokenOut.replaceChildren(h("span", {}, "Enrollment token (shown once, valid until " + time(created.expiresAt) + "): "), h("code", {}, created.token));
            }),
        },
        "Create enrollment token",
      ),
    );

  const revokeButton = (serial) =>
    h("button", { type: "button", class: "danger", onclick: () => openRevokeDialog(serial) }, "Revoke certificate");

  function openRevokeDialog(serial) {
    const reason = h("select", { id: "revoke-reason", name: "reason" }, REASONS.map((r) => h("option", { value: r }, r)));
    reason.value = "unspecified";
    const dialog = h(
      "dialog",
      { "aria-labelledby": "revoke-title", class: "dialog" },
      h(
        "form",
        { method: "dialog" },
        h("h2", { id: "revoke-title" }, `Revoke certificate ${serial}`),
        h("p", {}, `The device ${id} is disconnected at once and cannot connect with this certificate again. This cannot be undone.`),
        h("label", { for: "revoke-reason" }, "Reason"),
        reason,
        h(
          "div",
          { class: "dialog-buttons" },
          h("button", { type: "submit", value: "cancel" }, "Cancel"),
          h(
            "button",
            {
              type: "button",
              class: "danger",
              onclick: () => {
                dialog.close();
                dialog.remove();
                void act(`Revoke certificate ${serial}`, () => api("POST", `/v1/certificates/${encodeURIComponent(serial)}/revoke`, { reason: reason.value }));
              },
            },
            "Revoke",
          ),
        ),
      ),
    );
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    reason.focus();
  }

  const certRows = (certs?.certificates ?? []).map((c) => [
    certLink(c.serial),
    badge(c.status),
    time(c.notBefore),
    time(c.notAfter),
    c.revocationReason ?? "—",
    c.status === "active" && ctx.allowed["certs:revoke"] ? revokeButton(c.serial) : "",
  ]);

  const root = h(
    "div",
    {},
    h("p", { class: "crumbs" }, h("a", { href: "#/devices" }, "Devices"), " / ", id),
    h("h1", {}, `Device ${id}`),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Status"), h("dd", { id: "device-status" }, badge(device.status)),
      h("dt", {}, "Connected"), h("dd", {}, connected),
      h("dt", {}, "Name"), h("dd", {}, device.name),
      h("dt", {}, "Role"), h("dd", {}, device.role),
      h("dt", {}, "Group"), h("dd", {}, device.group ?? "(none)"),
      h("dt", {}, "Last seen"), h("dd", {}, time(device.lastSeenAt)),
      h("dt", {}, "Last address"), h("dd", {}, device.lastSeenAddress ?? "—"),
      h("dt", {}, "Attributes"), h("dd", {}, Object.entries(device.attributes ?? {}).map(([k, v]) => `${k}=${v}`).join(", ") || "—"),
    ),
    actions.length ? h("div", { class: "actions", role: "group", "aria-label": "Device actions" }, actions) : null,
    status,
    tokenOut,
    sessions ? section("Live sessions", table("Live MQTT sessions", ["Client id", "Address", "Method", "Certificate", "Since"], sessions.sessions.map((s) => [s.clientId, s.address ?? "—", s.method ?? "—", s.certSerial ? certLink(s.certSerial) : "—", time(s.connectedAt)]), "not connected.")) : null,
    certs ? section("Certificates", table("Certificates", ["Serial", "Status", "Not before", "Not after", "Revocation reason", ""], certRows, "none issued.")) : null,
    section(
      "Credentials",
      table("JWT keys and HMAC secrets", ["Kind", "Id", "Created", "Valid until"], [
        ...credentials.keys.map((k) => ["JWT key", k.keyId, time(k.createdAt), "—"]),
        ...credentials.secrets.map((s) => ["HMAC secret", s.secretId, time(s.createdAt), s.notAfter ? time(s.notAfter) : "current"]),
      ], "none (certificate only)."),
    ),
    section("Firmware", firmware ? table("Reported firmware", ["Version", "Security version", "Reported"], [[firmware.version, String(firmware.securityVersion), time(firmware.reportedAt)]]) : notice("No firmware inventory for this device yet.")),
    alerts ? section("Alerts", table("Alerts", ["Rule", "Severity", "Status", "Count", "Last seen"], (alerts.alerts ?? alerts).map((a) => [a.rule, badge(a.severity), a.status, String(a.count), time(a.lastSeen)]), "none.")) : null,
    events ? section("Recent events", table("Recent security events", ["Time", "Type", "Severity", "Actor"], events.map((e) => [time(e.time), e.type, badge(e.severity), e.actor]), "none.")) : null,
  );

  // Live: the session ending (a revocation, a quarantine, the device leaving) shows without a reload.
  ctx.onEvent((event) => {
    const about = event.subject === id || event.data?.deviceId === id;
    if (!about) return;
    if (event.type === "device.disconnected") connected.textContent = "no";
    if (event.type === "device.connected") connected.textContent = "yes";
    if (["cert.revoked", "device.status_changed", "cert.issued", "device.disconnected", "device.connected"].includes(event.type)) setTimeout(() => ctx.refresh(), 300);
  });
  return root;
}
