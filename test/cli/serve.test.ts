import { spawn, type ChildProcess } from "node:child_process";
import https from "node:https";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.js";
import { createApp } from "../../src/core.js";
import type { Change } from "../../src/ports.js";
import { REPO_ROOT, runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";

function get(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, attempts = 100): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("moat start / serve", () => {
  const dir = tempDir();
  const dataDir = join(dir.path, "data");
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    dir.cleanup();
  });

  it("initialises on first start, serves HTTPS, sees CLI changes via the feed, and stops cleanly on SIGTERM", async () => {
    child = spawn(process.execPath, [`${REPO_ROOT}dist/cli/bin.js`, "start", "--data-dir", dataDir, "--api-port", "0", "--pki-port", "0", "--mqtt-port", "0"], {
      env: { ...process.env, MOAT_LOG_LEVEL: "silent" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    const apiUrl = await waitFor("the API", async () => /API on (https:\/\/\S+)/.exec(stderr)?.[1]);
    expect(stdout).toMatch(/Admin API token \(shown once/);

    const ca = (await runCli(["--data-dir", dataDir, "ca", "chain"])).stdout;
    expect(await get(`${apiUrl}/healthz`, ca)).toEqual({ status: 200, body: '{"status":"ok"}' });

    // A second process (the CLI) changes a device; a process following the feed sees it.
    const follower = await createApp(loadConfig({ env: {}, flags: { dataDir, "feed.pollMs": 50 } }));
    try {
      const seen = new Promise<Change>((resolve) => follower.store.subscribe((c) => c.kind === "device.status" && resolve(c)));
      await new Promise((r) => setTimeout(r, 200));
      expect(await runCli(["--data-dir", dataDir, "device", "add", "cam-1"])).toMatchObject({ code: 0, stderr: "" });
      expect(await runCli(["--data-dir", dataDir, "device", "suspend", "cam-1"])).toMatchObject({ code: 0, stderr: "" });
      expect(await seen).toMatchObject({ subject: "cam-1", data: { to: "suspended" } });
    } finally {
      await follower.close();
    }

    const exited = new Promise<number | null>((resolve) => child!.on("exit", (code) => resolve(code)));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(stderr).toContain("moat: stopped");
  });
});
