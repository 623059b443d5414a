/**
 * `moat demo --quick` and `moat sim` as a user runs them: the built CLI in a separate process.
 * `moat sim` runs against a Moat served in this test process, reached through MOAT_URL, MOAT_TOKEN
 * and MOAT_CA, with the MQTT endpoint taken from GET /v1/info.
 */
import { spawn } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalMoat, type LocalMoat } from "../../src/cli/local-moat.js";
import { REPO_ROOT, runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";

describe("moat demo --quick", () => {
  it("walks the whole system through, prints the numbers and exits 0; MOAT_* settings pointing elsewhere change nothing", async () => {
    const elsewhere = tempDir("moat-demo-env-");
    try {
      const result = await runCli(["demo", "--quick"], {
        env: { MOAT_URL: "https://192.0.2.1:1", MOAT_TOKEN: "not-a-token", MOAT_CA: "/nonexistent/ca.pem", MOAT_DATA_DIR: elsewhere.path },
      });
      expect(result.stderr).not.toMatch(/error/i);
      expect(result.code).toBe(0);
      const out = result.stdout;
      expect(out).toMatch(/20 certificates issued and 20 devices connected over mutual TLS/);
      expect(out).toMatch(/(\d+) messages acknowledged, \1 delivered to a subscriber; latency p50 \d+ ms, p99 \d+ ms/);
      expect(out).toMatch(/relayed 5 messages of \d+ bytes it cannot read \(plaintext visible to it: no\)/);
      expect(out).toMatch(/opened 5; a replayed copy was refused \(COSE_REPLAYED\)/);
      expect(out).toMatch(/the broker refused all 4 attempts/);
      expect(out).toMatch(/forged messages delivered to anyone: 0/);
      expect(out).toMatch(/cut \d+ ms after the revocation; its SDK stopped retrying with DEVICE_REVOKED/);
      expect(out).toMatch(/the other 19 devices kept publishing throughout: yes/);
      expect(out).toMatch(/campaign ota-[0-9a-f]+ completed in [\d.]+ s: 19 devices booted the new image, 0 failed/);
      expect(out).toMatch(/Done: the whole walk went as it should/);
      // Nothing was written where MOAT_DATA_DIR pointed.
      expect(readdirSync(elsewhere.path)).toEqual([]);
    } finally {
      elsewhere.cleanup();
    }
  });
});

describe("moat sim from the command line", () => {
  let local: LocalMoat;
  const dir = tempDir("moat-sim-cli-");
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    local = await startLocalMoat();
    const ca = join(dir.path, "ca.pem");
    writeFileSync(ca, local.ca);
    env = { MOAT_URL: local.apiUrl, MOAT_TOKEN: local.adminToken, MOAT_CA: ca, MOAT_DATA_DIR: join(dir.path, "no-installation") };
  });

  afterAll(async () => {
    await local?.close();
    dir.cleanup();
  });

  it("runs against MOAT_URL/MOAT_TOKEN/MOAT_CA, finds the broker through GET /v1/info, and prints the summary as JSON", async () => {
    const result = await runCli(["sim", "--devices", "5", "--duration", "2s", "--rate", "2", "--prefix", "cli-", "--cleanup", "--json"], { env });
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(summary).toMatchObject({ scenario: "steady", devices: 5, enrolled: 5, connected: 5, denied: 0, lost: 0, errorsByCode: {}, cleanedUp: true, url: local.apiUrl });
    expect(summary.mqttUrl).toMatch(/^mqtts:\/\//);
    expect(summary.received).toBe(summary.sent);
    expect(summary.latencyMs).toMatchObject({ p50: expect.any(Number), p99: expect.any(Number) });
    // Progress went to stderr, never into the JSON.
    expect(result.stderr).toMatch(/enrolling/);
    const devices = (await local.app.devices.list({ search: `cli-${summary.runId as string}-`, limit: 100 })).devices;
    expect(devices).toHaveLength(6);
    expect(devices.every((d) => d.status === "decommissioned")).toBe(true);
  });

  it("winds down on Ctrl-C: the run stops early, --cleanup still decommissions its devices, and the summary says so", async () => {
    const child = spawn(process.execPath, [`${REPO_ROOT}dist/cli/bin.js`, "sim", "--devices", "3", "--duration", "10m", "--prefix", "int-", "--cleanup", "--json"], {
      env: { ...process.env, ...env, MOAT_LOG_LEVEL: "silent" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    const connected = new Promise<void>((resolve) =>
      child.stderr.on("data", (d) => {
        stderr += d;
        if (/3 enrolled, 3 connected/.test(stderr)) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    await connected;
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/interrupted; winding down/);
    const summary = JSON.parse(stdout) as Record<string, unknown>;
    expect(summary).toMatchObject({ interrupted: true, cleanedUp: true, enrolled: 3 });
    const devices = (await local.app.devices.list({ search: `int-${summary.runId as string}-`, limit: 100 })).devices;
    expect(devices.map((d) => d.status)).toEqual(["decommissioned", "decommissioned", "decommissioned", "decommissioned"]);
  });

  it("takes the admin token only from MOAT_TOKEN or --token-file, and says what is missing", async () => {
    const noToken = await runCli(["sim", "--devices", "1"], { env: { ...env, MOAT_TOKEN: "" } });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toMatch(/error SIM_SETUP_MISSING: no admin token: set MOAT_TOKEN or pass --token-file/);
    const flag = await runCli(["sim", "--token", local.adminToken], { env });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/unknown option '--token'/);
    const tokenFile = join(dir.path, "admin.token");
    writeFileSync(tokenFile, "moat_wrong_token\n", { mode: 0o600 });
    const wrong = await runCli(["sim", "--devices", "1", "--token-file", tokenFile], { env: { ...env, MOAT_TOKEN: "" } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/error AUTH_TOKEN_[A-Z_]+:/);
    expect(wrong.stderr).not.toContain("moat_wrong_token");
    const noCa = await runCli(["sim", "--devices", "1"], { env: { ...env, MOAT_CA: "" } });
    expect(noCa.stderr).toMatch(/error SIM_SETUP_MISSING: no CA bundle/);
  });

  it("refuses a scenario that needs a server it controls, and bad options, before creating anything", async () => {
    const outage = await runCli(["sim", "--scenario", "outage"], { env });
    expect(outage.code).toBe(1);
    expect(outage.stderr).toMatch(/error SIM_SCENARIO_UNAVAILABLE: scenario outage restarts the broker: run it with --local/);
    expect((await runCli(["sim", "--devices", "0"], { env })).code).toBe(2);
    expect((await runCli(["sim", "--rate", "-1"], { env })).code).toBe(2);
    expect((await runCli(["sim", "--scenario", "chaos"], { env })).code).toBe(2);
    const help = await runCli(["sim", "--help"]);
    expect(help.stdout).toMatch(/Examples:\n  MOAT_URL=/);
  });
});
