/** A second `moat serve` on one SQLite data dir starts, and says what the two nodes share and what not. */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT, runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";

function serve(dataDir: string): { child: ChildProcess; stderr: () => string; ready: Promise<void> } {
  const child = spawn(process.execPath, [`${REPO_ROOT}dist/cli/bin.js`, "serve", "--data-dir", dataDir, "--api-port", "0", "--pki-port", "0", "--mqtt-port", "0"], {
    env: { ...process.env, MOAT_LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d) => {
      stderr += d;
      if (stderr.includes("API on")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`moat serve exited with ${code}: ${stderr}`)));
  });
  return { child, stderr: () => stderr, ready };
}

describe("two moat serve on one SQLite data dir", () => {
  const dir = tempDir();
  const dataDir = join(dir.path, "data");
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    dir.cleanup();
  });

  it("the second node warns, naming the other node and what is and is not shared", async () => {
    expect((await runCli(["--data-dir", dataDir, "init"])).code).toBe(0);
    const first = serve(dataDir);
    children.push(first.child);
    await first.ready;
    const second = serve(dataDir);
    children.push(second.child);
    await second.ready;
    const warning = second.stderr();
    expect(warning).toContain(`another moat serve (pid ${first.child.pid})`);
    expect(warning).toMatch(/Shared between the two: the database .* change feed/);
    expect(warning).toMatch(/Not shared: MQTT sessions/);
    expect(first.stderr()).not.toContain("another moat serve");
  });
});
