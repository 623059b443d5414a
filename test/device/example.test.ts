/**
 * examples/device/sensor.ts, run as its own process the way its README says (tsx, `moat/device` from
 * the built package), against a live server: it enrolls, publishes, and stops with DEVICE_REVOKED
 * (exit code 1) when the operator revokes it.
 */
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";
import { startDeviceTestServer, type DeviceTestServer } from "./helpers.js";

const built = existsSync(join(REPO_ROOT, "dist/device/index.js"));

describe("examples/device/sensor.ts against a live server", () => {
  let s: DeviceTestServer;
  const work = tempDir("moat-example-");

  beforeAll(async () => {
    s = await startDeviceTestServer();
  });
  afterAll(async () => {
    await s?.close();
    work.cleanup();
  });

  it("dist/ is built (npm test builds it before the tests)", () => {
    expect(built, "run `npm run build` first").toBe(true);
  });

  it.runIf(built)("enrolls with the token file, publishes telemetry, and exits 1 with DEVICE_REVOKED after revocation", async () => {
    const token = await s.newDevice("example-1");
    writeFileSync(join(work.path, "token"), token, { mode: 0o600 });
    writeFileSync(join(work.path, "root.pem"), s.rootPem);
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO_ROOT, "examples/device/sensor.ts")], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        MOAT_SERVER: s.server,
        MOAT_CA: join(work.path, "root.pem"),
        MOAT_DEVICE_ID: "example-1",
        MOAT_DEVICE_DIR: join(work.path, "device"),
        MOAT_ENROLL_TOKEN_FILE: join(work.path, "token"),
        MOAT_TELEMETRY_MS: "100",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      while (!stdout.includes("sent {")) {
        if (child.exitCode !== null) throw new Error(`the example exited early: ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const [record] = await s.app.pki.certificates.list({ deviceId: "example-1" });
      await s.app.pki.certificates.revoke(record!.serialHex, "keyCompromise", "test");
      expect(await exited).toBe(1);
      expect(stderr).toContain("DEVICE_REVOKED");
      expect(stderr).toContain("enrolling example-1");
    } finally {
      if (child.exitCode === null) child.kill("SIGTERM");
    }
  });
});
