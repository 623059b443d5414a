import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";
import { startHttpBasicFixture, type Fixture } from "./fixtures.js";

/** `moat ARGS` as a separate process (the shared helper runs the built CLI, as users do). */
const moat = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(args, { env });

const FAST = ["--banner-wait", "500", "--probe-timeout", "1500", "--quiet"];

describe("moat scan", () => {
  const dir = tempDir("moat-scan-cli-");
  const dataDir = join(dir.path, "data");
  let http: Fixture;

  beforeAll(async () => {
    http = await startHttpBasicFixture();
    const init = await moat(["--data-dir", dataDir, "init", "--trust-domain", "scan.test"]);
    expect(init.code, init.stderr).toBe(0);
  });
  afterAll(async () => {
    await http?.close();
    dir.cleanup();
  });

  it("scans, stores, lists and shows a run; SARIF goes to a 0600 file", async () => {
    const scan = await moat(["--data-dir", dataDir, "scan", "127.0.0.1", "--ports", String(http.port), "--json", "--fail-on", "critical", ...FAST]);
    // A critical finding (admin:admin) with --fail-on critical exits 1, and the report is still printed.
    expect(scan.code, scan.stderr).toBe(1);
    const result = JSON.parse(scan.stdout) as { id: string; findings: Array<{ id: string }> };
    expect(result.id).toMatch(/^scan-[0-9a-f]{16}$/);
    expect(result.findings.map((f) => f.id).sort()).toEqual(["default-credentials-http", "http-basic-plaintext", "http-plaintext"]);

    const list = await moat(["--data-dir", dataDir, "scan", "list", "--json"]);
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as Array<{ id: string; counts: { critical: number } }>)[0]).toMatchObject({ id: result.id, counts: { critical: 1 } });

    const out = join(dir.path, "scan.sarif");
    const show = await moat(["--data-dir", dataDir, "scan", "show", result.id, "--sarif", "--out", out]);
    expect(show.code, show.stderr).toBe(0);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const sarif = JSON.parse(readFileSync(out, "utf8")) as { version: string; runs: Array<{ results: Array<{ ruleId: string }> }> };
    expect(sarif.version).toBe("2.1.0");
    expect(sarif.runs[0]!.results.map((r) => r.ruleId)).toContain("default-credentials-http");
  });

  it("refuses an out-of-scope target with exit 1 and a clear message, and unknown ids with SCAN_NOT_FOUND", async () => {
    const refused = await moat(["--data-dir", dataDir, "scan", "192.0.2.1", ...FAST]);
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stderr).toContain("SCAN_TARGET_OUT_OF_SCOPE");
    expect(refused.stderr).toContain("192.0.2.1");
    const missing = await moat(["--data-dir", dataDir, "scan", "show", "scan-ffffffffffffffff"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("SCAN_NOT_FOUND");
  });

  it("runs without a data directory with --no-store", async () => {
    const result = await moat(["--data-dir", join(dir.path, "none"), "scan", "127.0.0.1", "--ports", String(http.port), "--no-store", "--no-credentials", ...FAST]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("http-basic-plaintext");
    expect(result.stdout).not.toContain("default-credentials-http");
  });
});
