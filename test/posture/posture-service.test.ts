/**
 * Posture runs as an operator meets them: suppressions that lapse, re-evaluation of one device from the
 * change feed, and the CLI (moat posture run exits 0 whatever it found; moat compliance verify 0/1).
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { App } from "../../src/core.js";
import { PostureChangeFollower } from "../../src/posture/index.js";
import { SessionRecorder } from "../../src/sessions/index.js";
import { KyselySessionRepository } from "../../src/store/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { forEachDialect } from "../helpers/dialects.js";

const DAY = 86_400_000;

forEachDialect("posture runs, suppressions and re-evaluation", (dialect) => {
  let t: TestApp;
  let app: App;

  beforeAll(async () => {
    t = await createTestApp(dialect);
    app = t.app;
  });
  afterAll(async () => t?.cleanup());

  it("a suppression hides a finding until it expires, then the finding is open again; both are audited", async () => {
    const root = await app.ca.active("root");
    await expect(app.posture.suppress({ check: "no-such-check", resource: root.serialHex, reason: "x", expiresAt: new Date(Date.now() + DAY).toISOString(), actor: "test" })).rejects.toMatchObject({ code: "POSTURE_CHECK_UNKNOWN" });
    await expect(app.posture.suppress({ check: "root-ca-key-online", resource: root.serialHex, reason: "x", expiresAt: new Date(Date.now() - DAY).toISOString(), actor: "test" })).rejects.toMatchObject({ code: "POSTURE_SUPPRESSION_INVALID" });
    const saved = await app.posture.suppress({ check: "root-ca-key-online", resource: root.serialHex, reason: "offline ceremony booked", expiresAt: new Date(Date.now() + 10 * DAY).toISOString(), actor: "test" });
    const [event] = await app.audit.list({ type: "posture.suppressed" });
    expect(event?.data).toMatchObject({ id: saved.id, check: "root-ca-key-online", resource: root.serialHex });

    const during = await app.posture.run({ check: "root-ca-key-online", actor: "test" });
    expect(during.checks[0]).toMatchObject({ status: "passed", findings: 0, suppressed: 1 });
    expect(during.findings[0]!.suppressed).toMatchObject({ reason: "offline ceremony booked", by: "test" });

    const lapsed = await app.posture.run({ check: "root-ca-key-online", actor: "test", at: Date.now() + 11 * DAY });
    expect(lapsed.checks[0]).toMatchObject({ status: "failed", findings: 1, suppressed: 0 });
    expect(lapsed.findings[0]!.suppressed).toBeUndefined();
    expect(await app.posture.suppressions(true)).toHaveLength(1);
  });

  it("re-evaluates one device after a change-feed row and updates the newest full run in place", async () => {
    const recorder = new SessionRecorder(new KyselySessionRepository(app.store.db));
    await recorder.start(app.audit);
    const follower = new PostureChangeFollower(app.posture, (error) => {
      throw error;
    });
    const unfollow = app.store.subscribe((change) => follower.take(change));
    try {
      await app.devices.create({ id: "live-one" }, "test");
      const cert = await app.pki.certificates.issueWithGeneratedKey({ deviceId: "live-one", actor: "test" });
      await app.audit.emit({ type: "device.connected", subject: "live-one", data: { session: "s-live", node: "n-1", serial: cert.serialHex } });
      await recorder.settled();
      const full = await app.posture.run({ actor: "test" });
      expect(full.findings.some((f) => f.check === "revoked-certificate-connected")).toBe(false);
      await follower.settled();

      await app.pki.certificates.revoke(cert.serialHex, "keyCompromise", "test");
      await follower.settled();
      const latest = await app.posture.latest();
      expect(latest?.id).toBe(full.id);
      expect(latest?.checks.find((c) => c.check === "revoked-certificate-connected")).toMatchObject({ status: "failed", findings: 1 });
      expect(latest?.counts.critical).toBe(full.counts.critical + 1);
      const page = await app.posture.findings(full.id, { check: "revoked-certificate-connected" });
      expect(page.findings).toMatchObject([{ resources: expect.arrayContaining([{ kind: "device", id: "live-one" }]) }]);
    } finally {
      unfollow();
      await follower.stop();
      await recorder.stop();
    }
  });
});

describe("the CLI", () => {
  let t: TestApp;
  const moat = (args: string[]) => spawnSync(process.execPath, ["--import", "tsx", "src/cli/bin.ts", ...args, ...t.cliArgs], { encoding: "utf8" });

  beforeAll(async () => {
    t = await createTestApp("sqlite");
  });
  afterAll(async () => t?.cleanup());

  it("moat posture run exits 0 with findings and prints { runAt, findings }; moat compliance verify exits 0, then 1 after an edit", async () => {
    const run = moat(["posture", "run", "--json"]);
    expect(run.status, run.stderr).toBe(0);
    const printed = JSON.parse(run.stdout) as { runAt: string; findings: { check: string; severity: string; resources: unknown[]; evidence: unknown; fix: string }[] };
    expect(printed.runAt).toMatch(/^\d{4}-/);
    expect(printed.findings).toContainEqual(expect.objectContaining({ check: "root-ca-key-online", severity: "medium", fix: expect.any(String) }));
    expect(moat(["posture", "run", "--check", "nope"]).status).toBe(1);

    const dir = t.database.dataDir;
    expect(moat(["compliance", "report", "--standard", "uk-psti", "--out", join(dir, "psti.json")]).status).toBe(0);
    expect(moat(["audit", "key", "export", "--out", join(dir, "audit.vkey")]).status).toBe(0);
    const ok = moat(["compliance", "verify", join(dir, "psti.json"), "--key", join(dir, "audit.vkey")]);
    expect(ok.status, ok.stdout + ok.stderr).toBe(0);
    const text = readFileSync(join(dir, "psti.json"), "utf8");
    writeFileSync(join(dir, "psti.json"), text.replace('"uk-psti"', '"uk-psta"'));
    const bad = moat(["compliance", "verify", join(dir, "psti.json"), "--key", join(dir, "audit.vkey")]);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain("REPORT NOT VERIFIED");
  });
});
