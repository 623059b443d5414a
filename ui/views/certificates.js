// Certificates and CAs: counts by state, expiring soon, recently revoked; each CA's CRL and OCSP state.
import { api, badge, certLink, deviceLink, h, section, table, tiles, time } from "../lib.js";

export async function render() {
  const [summary, expiring, revoked] = await Promise.all([
    api("GET", "/v1/dashboard/certificates"),
    api("GET", "/v1/certificates?expiringWithin=30d&limit=100"),
    api("GET", "/v1/certificates?status=revoked&limit=100"),
  ]);
  const c = summary.certificates;
  const soon = expiring.certificates.sort((a, b) => a.notAfter.localeCompare(b.notAfter));
  return h(
    "div",
    {},
    h("h1", {}, "Certificates and CAs"),
    tiles([
      ["Active", c.active],
      ["Expiring in 7 days", c.expiringIn7Days],
      ["Expiring in 30 days", c.expiringIn30Days],
      ["Revoked", c.revoked],
      ["Superseded", c.superseded],
      ["Expired", c.expired],
    ]),
    section(
      "Certificate authorities",
      table(
        "CAs with CRL and OCSP state",
        ["Role", "Subject", "Serial", "Not after", "Key", "CRL number", "CRL next update", "OCSP"],
        summary.cas.map((ca) => [
          ca.role + (ca.active ? "" : " (retired)"),
          ca.subject,
          ca.serial,
          time(ca.notAfter),
          ca.keyOnline ? "online" : "offline",
          ca.crl ? String(ca.crl.number) : "—",
          ca.crl ? [time(ca.crl.nextUpdate), " ", badge(ca.crl.current ? "current" : "stale")] : "—",
          ca.ocsp,
        ]),
      ),
    ),
    section("Expiring within 30 days", table("Active certificates expiring within 30 days", ["Serial", "Device", "Not after"], soon.map((x) => [certLink(x.serial), deviceLink(x.deviceId), time(x.notAfter)]), "none.")),
    section("Revoked", table("Revoked certificates", ["Serial", "Device", "Revoked", "Reason"], revoked.certificates.map((x) => [certLink(x.serial), deviceLink(x.deviceId), time(x.revokedAt), x.revocationReason ?? "—"]), "none.")),
  );
}
