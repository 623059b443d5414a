/**
 * Output is complete wherever it goes, and a page has an honest size: a full page of JSON through a
 * pipe read slowly by another process arrives whole, and asking for more than a page is refused.
 */
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { REPO_ROOT, runCli } from "../helpers/cli.js";

/** A reader that takes one chunk, then waits before the next: the writer's pipe stays full for a while. */
const SLOW_READER = `
const chunks = [];
process.stdin.on("data", (chunk) => {
  chunks.push(chunk);
  process.stdin.pause();
  setTimeout(() => process.stdin.resume(), 100);
});
process.stdin.on("end", () => process.stdout.write(Buffer.concat(chunks)));
`;

/** Runs `moat ARGS | node SLOW_READER`; returns moat's exit code and what the reader received. */
async function pipeThroughSlowReader(args: string[]): Promise<{ code: number | null; received: string; stderr: string }> {
  const moat = spawn(process.execPath, [`${REPO_ROOT}dist/cli/bin.js`, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const reader = spawn(process.execPath, ["-e", SLOW_READER], { stdio: [moat.stdout, "pipe", "inherit"] });
  let received = "";
  let stderr = "";
  moat.stderr.on("data", (d) => (stderr += d));
  reader.stdout.on("data", (d) => (received += d));
  // moat's stdout belongs to the reader, so this process waits for moat's exit, not for its streams to close.
  const ended = (child: import("node:child_process").ChildProcess, event: "exit" | "close") => new Promise<number | null>((resolve, reject) => child.on("error", reject).on(event, (code: number | null) => resolve(code)));
  const [code] = await Promise.all([ended(moat, "exit"), ended(reader, "close")]);
  return { code, received, stderr };
}

describe("complete output and page limits", () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp("sqlite");
    for (let i = 0; i < 1000; i++) await t.app.devices.create({ id: `sensor-${String(i).padStart(4, "0")}`, group: "boilers", attributes: { floor: String(i % 7), note: "x".repeat(40) } }, "test");
  }, 120_000);
  afterAll(() => t.cleanup());

  it("writes a full page of --json through a slow pipe: every device arrives and the JSON parses", async () => {
    const { code, received, stderr } = await pipeThroughSlowReader([...t.cliArgs, "device", "list", "--json", "--limit", "1000"]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    // More than a pipe buffer (64 KiB), which is where an early exit used to cut it.
    expect(received.length).toBeGreaterThan(128 * 1024);
    const page = JSON.parse(received) as { devices: { id: string }[]; next: string | null };
    expect(page.devices).toHaveLength(1000);
    expect(page.devices[999]!.id).toBe("sensor-0999");
    expect(page.next).toBeNull();
  });

  it("ends quietly when the reader goes away early (moat … | head): no EPIPE crash, the command's own exit code", async () => {
    const moat = spawn(process.execPath, [`${REPO_ROOT}dist/cli/bin.js`, ...t.cliArgs, "device", "list", "--json", "--limit", "1000"], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    moat.stderr.on("data", (d) => (stderr += d));
    // Read one chunk, then close the pipe while moat still has most of the page to write.
    moat.stdout.once("data", () => moat.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => moat.on("exit", resolve));
    expect(stderr).toBe("");
    expect(code).toBe(0);
  });

  it("refuses --limit above a page as a usage error (exit 2) that says why, on every list command", async () => {
    for (const args of [
      ["device", "list"],
      ["cert", "list"],
      ["audit", "list"],
      ["scan", "list"],
      ["ota", "list"],
    ]) {
      const result = await runCli([...t.cliArgs, ...args, "--limit", "1001"]);
      expect([args.join(" "), result.code]).toEqual([args.join(" "), 2]);
      expect(result.stderr).toContain("a page holds 1 to 1000 items");
      expect(result.stdout).toBe("");
    }
  });

  it("refuses a page above 1,000 in the services too, with PAGE_LIMIT_EXCEEDED", async () => {
    await expect(t.app.devices.list({ limit: 1001 })).rejects.toMatchObject({ code: "PAGE_LIMIT_EXCEEDED" });
    await expect(t.app.audit.list({ limit: 5000 })).rejects.toMatchObject({ code: "PAGE_LIMIT_EXCEEDED" });
    await expect(t.app.pki.certificates.list({ limit: 10_000 })).rejects.toMatchObject({ code: "PAGE_LIMIT_EXCEEDED" });
    await expect(t.app.firmware.campaigns.list({ limit: 1001 })).rejects.toMatchObject({ code: "PAGE_LIMIT_EXCEEDED" });
    await expect(t.app.scans.list({ limit: 1001 })).rejects.toMatchObject({ code: "PAGE_LIMIT_EXCEEDED" });
  });
});
