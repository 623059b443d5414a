import { spawnSync } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { buildProgram } from "../src/cli/program.js";
import { createTestApp, type TestApp } from "./helpers/app.js";
import { REPO_ROOT } from "./helpers/cli.js";
import { tempDir } from "./helpers/temp.js";
import { writeImage } from "./firmware-fixtures.js";

let out = "";
let err = "";
beforeEach(() => {
  out = "";
  err = "";
  vi.spyOn(process.stdout, "write").mockImplementation((chunk) => ((out += String(chunk)), true));
  vi.spyOn(process.stderr, "write").mockImplementation((chunk) => ((err += String(chunk)), true));
});
afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

describe("moat firmware and moat ota", () => {
  let t: TestApp;
  const dir = tempDir("moat-fw-cli-");
  const file = (name: string) => join(dir.path, name);

  /** Runs `moat ARGS` in-process against the test installation; 1 for errors, as bin.ts maps them. */
  async function moat(...args: string[]): Promise<number> {
    process.exitCode = undefined;
    try {
      const argv = [...t.cliArgs, ...args];
      await (await buildProgram(argv)).parseAsync(["node", "moat", ...argv]);
      return Number(process.exitCode ?? 0);
    } catch (error) {
      err += `error ${(error as { code?: string }).code}: ${(error as Error).message}\n`;
      return 1;
    }
  }

  beforeAll(async () => {
    t = await createTestApp("sqlite");
    for (const id of ["lab-1", "lab-2", "lab-3", "lab-4"]) await t.app.devices.create({ id, group: "lab", status: "active" }, "test");
    writeImage(dir.path, "fw.bin", 50_000);
  });
  afterAll(async () => {
    await t.cleanup();
    dir.cleanup();
  });

  it("keygen, sign (with --version), export the root, and verify with exit codes", async () => {
    expect(await moat("firmware", "keygen", "--name", "rel", "--alg", "ecdsa-p256", "--json")).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ name: "rel", alg: "ecdsa-p256", issuer: "root", offline: false });
    expect(await moat("firmware", "sign", file("fw.bin"), "--version", "1.2.0", "--security-version", "3", "--hardware", "sensor-v2", "--key", "rel", "--out", file("fw.manifest.json"))).toBe(0);
    expect(JSON.parse(readFileSync(file("fw.manifest.json"), "utf8")).signatures).toHaveLength(1);
    expect(await moat("firmware", "root", "export", "--out", file("root.pub"))).toBe(0);
    expect(statSync(file("root.pub")).mode & 0o777).toBe(0o600);

    out = "";
    expect(await moat("firmware", "verify", file("fw.bin"), "--manifest", file("fw.manifest.json"), "--trust", file("root.pub"), "--hardware", "sensor-v2", "--min-security-version", "3", "--json")).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ valid: true, version: "1.2.0", securityVersion: 3, signers: [{ name: "rel", alg: "ecdsa-p256" }] });
    expect(await moat("firmware", "verify", file("fw.bin"), "--manifest", file("fw.manifest.json"), "--trust", file("root.pub"), "--hardware", "sensor-v3")).toBe(1);
    expect(err).toMatch(/FIRMWARE_HARDWARE_MISMATCH/);
  });

  it("exits 0 for a valid image and 1 with the reason for an invalid one, as a real process", () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/bin.ts"), "firmware", "verify", file("fw.bin"), "--manifest", file("fw.manifest.json"), "--trust", file("root.pub"), ...args], {
        encoding: "utf8",
        cwd: REPO_ROOT,
      });
    const ok = run("--hardware", "sensor-v2");
    expect([ok.status, ok.stdout]).toEqual([0, expect.stringMatching(/^valid: sensor-v2 1\.2\.0/)]);
    const downgrade = run("--min-security-version", "4");
    expect(downgrade.status).toBe(1);
    expect(downgrade.stderr).toMatch(/^error FIRMWARE_ROLLBACK: security version 3 is below the device's counter 4/);
  });

  it("releases a staged campaign and drives it with status, report, resume, abort and list", async () => {
    expect(await moat("ota", "release", file("fw.bin"), "--manifest", file("fw.manifest.json"), "--group", "lab", "--stages", "50,100", "--max-failure-rate", "5%", "--json")).toBe(0);
    const released = JSON.parse(out);
    expect(released).toMatchObject({ status: "running", stages: [50, 100], stagePercent: 50, counts: { notified: 2, pending: 2 } });
    const id = released.id as string;
    const campaign = await t.app.firmware.campaigns.get(id);
    const canary = campaign.devices.find((d) => d.status === "notified")!.deviceId;
    out = "";
    expect(await moat("ota", "report", id, canary, "failed:FIRMWARE_DIGEST_MISMATCH", "--json")).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ status: "paused", pauseReason: "failure-rate", failureRate: 50 });
    out = "";
    expect(await moat("ota", "status", id, "--devices", "--json")).toBe(0);
    expect(JSON.parse(out).devices.find((d: { deviceId: string }) => d.deviceId === canary)).toMatchObject({ status: "failed", reason: "FIRMWARE_DIGEST_MISMATCH" });
    expect(await moat("ota", "pause", id)).toBe(1);
    expect(err).toMatch(/OTA_CAMPAIGN_TRANSITION/);
    expect(await moat("ota", "resume", id)).toBe(0);
    expect(await moat("ota", "abort", id)).toBe(0);
    out = "";
    expect(await moat("ota", "list", "--json")).toBe(0);
    expect(JSON.parse(out)).toEqual([expect.objectContaining({ id, status: "aborted" })]);
    expect(await moat("ota", "release", file("fw.bin"), "--manifest", file("fw.manifest.json"), "--group", "lab", "--stages", "25,5,100")).toBe(1);
    expect(err).toMatch(/OTA_STAGES_INVALID/);
  });

  it("manages the TUF repository: status, root export, key rotation", async () => {
    out = "";
    expect(await moat("firmware", "tuf", "status", "--json")).toBe(0);
    expect(JSON.parse(out)).toMatchObject({ versions: { root: 1 }, consistentSnapshot: true, targets: 2 });
    expect(await moat("firmware", "tuf", "root", "--out", file("root.json"))).toBe(0);
    expect(JSON.parse(readFileSync(file("root.json"), "utf8")).signed.roles.root.threshold).toBe(2);
    out = "";
    expect(await moat("firmware", "tuf", "rotate", "timestamp", "--json")).toBe(0);
    expect(JSON.parse(out)).toEqual({ rootVersion: 2 });
    expect(await moat("firmware", "tuf", "rotate", "janitor")).toBe(1);
  });

  it("revokes a signing key; verify then refuses with the signed revocation list", async () => {
    expect(await moat("firmware", "revoke", "rel", "--reason", "keyCompromise")).toBe(0);
    expect(await moat("firmware", "revocations", "--out", file("revocations.json"))).toBe(0);
    expect(existsSync(file("revocations.json"))).toBe(true);
    expect(await moat("firmware", "verify", file("fw.bin"), "--manifest", file("fw.manifest.json"), "--trust", file("root.pub"), "--revocations", file("revocations.json"))).toBe(1);
    expect(err).toMatch(/FIRMWARE_KEY_REVOKED/);
    out = "";
    expect(await moat("firmware", "keys", "--json")).toBe(0);
    expect(JSON.parse(out).find((k: { name: string }) => k.name === "rel").revocationReason).toBe("keyCompromise");
  });

  it("runs the seed's legacy check but calls it weaker", async () => {
    const secret = Buffer.alloc(32, 9);
    writeFileSync(file("hmac.key"), secret, { mode: 0o600 });
    const bytes = readFileSync(file("fw.bin"));
    const sha = createHash("sha256").update(bytes).digest("hex");
    const mac = createHmac("sha256", secret).update(bytes).digest("hex");
    expect(await moat("firmware", "verify-legacy", file("fw.bin"), "--sha256", sha, "--hmac", mac, "--secret-file", file("hmac.key"))).toBe(0);
    expect(out).toMatch(/WEAKER/);
    expect(err).toMatch(/can forge/);
    expect(await moat("firmware", "verify-legacy", file("fw.bin"), "--sha256", sha, "--hmac", "0".repeat(64), "--secret-file", file("hmac.key"))).toBe(1);
    expect(err).toMatch(/FIRMWARE_LEGACY_MISMATCH/);
  });
});
