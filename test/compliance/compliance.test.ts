/**
 * Compliance reports over real installations on both dialects: a deliberately weak installation fails
 * the right ETSI EN 303 645 provisions and passes them after the fixes; reports are signed with the
 * audit key and a one-byte edit breaks verification; attestations pass manual controls until they expire.
 */
import { generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatVerifierKey, rawPublicKey } from "../../src/audit/index.js";
import { CATALOGUES, verifyReportText, type ComplianceReport } from "../../src/compliance/index.js";
import { loadConfig } from "../../src/config/index.js";
import { createApp, type App } from "../../src/core.js";
import { CHECKS } from "../../src/posture/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { forEachDialect } from "../helpers/dialects.js";
import { buildCsr } from "../pki-fixture.js";

const statusOf = (report: ComplianceReport, id: string) => report.controls.find((c) => c.id === id)?.status;

describe("the catalogues", () => {
  it("name only posture checks and configuration facts that exist, and every ETSI provision 5.1-1 … 5.13-1, 6-1 … 6-5", () => {
    const checks = new Set(CHECKS.map((c) => c.id));
    const facts = new Set(["support-period", "reporting-contact", "firmware-signing", "audit-witness", "posture-runs", "secrets-encrypted-at-rest", "certificate-rotation", "broker-auth-ban", "api-auth-backoff", "broker-rate-limits", "api-authenticated", "audit-readable", "input-validation", "auto-revocation"]);
    for (const catalogue of CATALOGUES)
      for (const control of catalogue.controls)
        for (const source of control.evidence) {
          if ("posture" in source) expect(checks, `${catalogue.standard} ${control.id}`).toContain(source.posture);
          if ("config" in source) expect(facts, `${catalogue.standard} ${control.id}`).toContain(source.config);
        }
    const etsi = CATALOGUES.find((c) => c.standard === "etsi-en-303-645")!.controls.map((c) => c.id);
    expect(etsi).toContain("5.1-1");
    expect(etsi).toContain("5.13-1");
    expect(etsi.filter((id) => id.startsWith("6-"))).toEqual(["6-1", "6-2", "6-3", "6-4", "6-5"]);
    expect(CATALOGUES.find((c) => c.standard === "iec-62443-4-2")!.controls.map((c) => c.id)).toEqual(
      ["1.2", "1.5", "1.7", "1.8", "1.9", "1.11", "2.1", "2.8", "2.9", "3.1", "3.4", "3.5", "3.8", "3.9", "4.1", "4.3", "5.1", "6.1", "6.2", "7.1", "7.2", "7.7", "7.8"].map((n) => `CR ${n}`),
    );
    expect(CATALOGUES.find((c) => c.standard === "cra-annex-i")!.controls.map((c) => c.id)).toEqual([
      "I.1",
      ..."abcdefghijklm".split("").map((l) => `I.2(${l})`),
      ..."12345678".split("").map((n) => `II.${n}`),
    ]);
  });
});

forEachDialect("compliance reports", (dialect) => {
  let t: TestApp;
  const opened: App[] = [];

  async function open(flags: Record<string, unknown>): Promise<App> {
    const app = await createApp(loadConfig({ env: {}, flags: { dataDir: t.database.dataDir, databaseUrl: t.database.databaseUrl ?? undefined, logLevel: "info", ...flags } as never }));
    opened.push(app);
    return app;
  }

  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => {
    for (const app of opened) await app.close();
    await t?.cleanup();
  });

  it("a weak installation fails ETSI 5.1-1, 5.5-1 and 5.3-13; after the fixes they pass and the report says what changed", async () => {
    // Weak: one key on two devices, a plaintext listener, no published support period.
    const weak = await open({ "broker.mqttPlainPort": 18831 });
    for (const id of ["cam-1", "cam-2"]) await weak.devices.create({ id }, "test");
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    await weak.pki.certificates.issueFromCsr({ deviceId: "cam-1", csr: buildCsr({ key: privateKey, subject: [["2.5.4.3", "cam-1"]] }).der, actor: "test" });
    const shared = await weak.pki.certificates.issueFromCsr({ deviceId: "cam-2", csr: buildCsr({ key: privateKey, subject: [["2.5.4.3", "cam-2"]] }).der, actor: "test" });
    const before = (await weak.compliance.report({ standard: "etsi-en-303-645", actor: "test", fresh: true })).report;
    expect(statusOf(before, "5.1-1")).toBe("fail");
    expect(statusOf(before, "5.5-1")).toBe("fail");
    expect(statusOf(before, "5.3-13")).toBe("fail");
    expect(before.controls.find((c) => c.id === "5.1-1")!.evidence).toContainEqual(expect.objectContaining({ kind: "posture", check: "device-certificate-shared", status: "failed", findings: 1 }));
    expect(before.changes.previous).toBeNull();

    // The fixes: the shared certificate revoked, the plaintext listener gone, the support period published.
    await weak.pki.certificates.revoke(shared.serialHex, "keyCompromise", "test");
    await weak.pki.certificates.issueWithGeneratedKey({ deviceId: "cam-2", actor: "test" });
    const fixed = await open({ "compliance.supportPeriodEnd": "2031-12-31" });
    const { report: after, hash } = await fixed.compliance.report({ standard: "etsi-en-303-645", actor: "test", fresh: true });
    expect(statusOf(after, "5.1-1")).toBe("pass");
    expect(statusOf(after, "5.5-1")).toBe("pass");
    expect(statusOf(after, "5.3-13")).toBe("pass");
    expect(after.score.percent).toBeGreaterThan(before.score.percent);
    expect(after.changes.previous).toMatchObject({ id: before.id });
    expect(after.changes.controls).toEqual(expect.arrayContaining([{ id: "5.1-1", from: "fail", to: "pass" }, { id: "5.5-1", from: "fail", to: "pass" }, { id: "5.3-13", from: "fail", to: "pass" }]));
    // Posture evidence cites the run's audit sequence number; the report's hash is in the audit log.
    expect(after.posture?.auditSeq).toEqual(expect.any(Number));
    const [event] = await fixed.audit.list({ type: "compliance.report", subject: after.id });
    expect(event?.data).toMatchObject({ standard: "etsi-en-303-645", sha256: hash });
  });

  it("signs the JSON report with the audit key: verification passes, and fails after a one-byte edit or with another key", async () => {
    const app = await open({});
    const { report } = await app.compliance.report({ standard: "nist-ir-8259a", actor: "test" });
    const text = JSON.stringify(report, null, 2);
    const key = await app.auditKeys.verifierKey();
    expect(verifyReportText(text, key)).toMatchObject({ ok: true });
    expect(await app.compliance.verify(text)).toMatchObject({ ok: true });
    // One byte: a status letter of one control.
    const at = text.indexOf('"status": "') + '"status": "'.length;
    const edited = text.slice(0, at) + (text[at] === "p" ? "q" : "p") + text.slice(at + 1);
    expect(edited.length).toBe(text.length);
    expect(verifyReportText(edited, key)).toMatchObject({ ok: false, problem: expect.stringContaining("changed after it was signed") });
    // One byte of the signature itself.
    const sigAt = text.indexOf('"value": "') + '"value": "'.length;
    const badSig = text.slice(0, sigAt) + (text[sigAt] === "A" ? "B" : "A") + text.slice(sigAt + 1);
    expect(verifyReportText(badSig, key).ok).toBe(false);
    // A key that is not the installation's.
    const other = formatVerifierKey("other", rawPublicKey(generateKeyPairSync("ed25519").publicKey));
    expect(verifyReportText(text, other)).toMatchObject({ ok: false, problem: expect.stringContaining("not by the trusted key") });
    await expect(app.compliance.verify("not json")).rejects.toMatchObject({ code: "COMPLIANCE_REPORT_INVALID" });
  });

  it("an attestation passes an evidence-assisted control until it expires; failing evidence is never outvoted", async () => {
    const app = await open({ "compliance.reportingContact": "https://example.com/security" });
    expect((await app.compliance.evaluate("etsi-en-303-645")).controls.find((c) => c.id === "5.2-1")?.status).toBe("manual");
    const attestation = await app.compliance.attest({ control: "etsi-en-303-645:5.2-1", statement: "Disclosure policy published", evidenceUrl: "https://example.com/security", owner: "Product security", expiresAt: new Date(Date.now() + 86_400_000).toISOString(), actor: "test" });
    expect(attestation.auditSeq).toEqual(expect.any(Number));
    const passed = (await app.compliance.evaluate("etsi-en-303-645")).controls.find((c) => c.id === "5.2-1")!;
    expect(passed.status).toBe("pass");
    expect(passed.evidence).toContainEqual(expect.objectContaining({ kind: "attestation", id: attestation.id, owner: "Product security", auditSeq: attestation.auditSeq }));
    // Expired: back to manual.
    await app.store.db.updateTable("compliance_attestations").set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where("id", "=", attestation.id).execute();
    expect((await app.compliance.evaluate("etsi-en-303-645")).controls.find((c) => c.id === "5.2-1")?.status).toBe("manual");
    // Without the reporting contact the evidence fails the control, attested or not.
    const noContact = await open({});
    await noContact.compliance.attest({ control: "uk-psti:2", statement: "Contact on the box", owner: "PM", expiresAt: new Date(Date.now() + 86_400_000).toISOString(), actor: "test" });
    expect((await noContact.compliance.evaluate("uk-psti")).controls.find((c) => c.id === "2")?.status).toBe("fail");
    await expect(app.compliance.attest({ control: "etsi-en-303-645:9.9-9", statement: "x", owner: "y", expiresAt: "2030-01-01T00:00:00Z", actor: "t" })).rejects.toMatchObject({ code: "COMPLIANCE_CONTROL_UNKNOWN" });
    await expect(app.compliance.attest({ control: "uk-psti:1", statement: "x", owner: "y", expiresAt: "2001-01-01T00:00:00Z", actor: "t" })).rejects.toMatchObject({ code: "COMPLIANCE_ATTESTATION_INVALID" });
  });

  it("renders self-contained HTML and Markdown carrying the JSON report's hash, and drafts the PSTI statement", async () => {
    const { reportHtml, reportMarkdown } = await import("../../src/compliance/index.js");
    const app = await open({ "compliance.manufacturer": "Acme Devices Ltd", "compliance.supportPeriodEnd": "2030-06-30" });
    const { report, hash } = await app.compliance.report({ standard: "uk-psti", actor: "test" });
    const html = reportHtml(report, hash);
    expect(html).toContain(hash);
    expect(html).not.toMatch(/<script|<link|src=|https?:\/\//i);
    expect(html).toContain("@media print");
    expect(reportMarkdown(report, hash)).toContain(hash);
    const statement = await app.compliance.pstiStatement();
    expect(statement).toContain("Acme Devices Ltd");
    expect(statement).toContain("2030-06-30");
    expect(statement).toContain("[TO COMPLETE: URL or e-mail (compliance.reportingContact)]");
    const scores = await app.compliance.scores();
    expect(scores.map((s) => s.standard)).toEqual(CATALOGUES.map((c) => c.standard));
    expect(scores.find((s) => s.standard === "uk-psti")!.failing.map((f) => f.id)).toEqual(["2"]);
  });
});
