// One certificate: its fields and PEM, linked to its device.
import { api, badge, deviceLink, h, time } from "../lib.js";

export async function render(ctx) {
  const serial = ctx.params[0];
  const c = await api("GET", `/v1/certificates/${encodeURIComponent(serial)}`);
  const row = (label, value) => [h("dt", {}, label), h("dd", {}, value ?? "—")];
  return h(
    "div",
    {},
    h("p", { class: "crumbs" }, h("a", { href: "#/certificates" }, "Certificates"), " / ", c.serial),
    h("h1", {}, `Certificate ${c.serial}`),
    h(
      "dl",
      { class: "facts" },
      row("Status", badge(c.status)),
      row("Device", deviceLink(c.deviceId)),
      row("Subject", c.subject),
      row("Issuer", c.issuer),
      row("Key", c.keyKind),
      row("Not before", time(c.notBefore)),
      row("Not after", time(c.notAfter)),
      row("SHA-256 fingerprint", h("code", {}, c.fingerprint)),
      row("Revoked", c.revokedAt ? `${time(c.revokedAt)} (${c.revocationReason})` : "no"),
      row("Superseded by", c.supersededBy),
    ),
    h("details", {}, h("summary", {}, "PEM"), h("pre", { class: "pem" }, c.certificatePem)),
  );
}
