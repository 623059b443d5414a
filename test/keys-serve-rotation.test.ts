import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import https from "node:https";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT, runCli, type CliResult } from "./helpers/cli.js";
import { requireCommand } from "./helpers/requirements.js";
import { tempDir } from "./helpers/temp.js";

function request(url: string, ca: string, token: string, method: string, body?: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, ca, headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) } }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body ? JSON.stringify(body) : undefined);
  });
}

const ok = (result: CliResult) => {
  if (result.code !== 0) throw new Error(`moat exited ${result.code}: ${result.stderr}`);
  return result;
};

describe.skipIf(!requireCommand("openssl", "openssl"))("KEK rotation while moat serve runs", () => {
  const dir = tempDir("moat-serve-rotate-");
  const dataDir = join(dir.path, "data");
  const env = { MOAT_MASTER_KEY: "", MOAT_LOG_LEVEL: "silent" };
  let serve: ChildProcess | undefined;
  afterAll(() => {
    if (serve && serve.exitCode === null) serve.kill("SIGKILL");
    dir.cleanup();
  });

  it("the running server opens secrets rewrapped under the new version after the old one is retired", async () => {
    const { adminToken } = JSON.parse(ok(await runCli(["--data-dir", dataDir, "init", "--trust-domain", "rotate.test", "--json"], { env })).stdout) as { adminToken: string };
    serve = spawn(process.execPath, [`${REPO_ROOT}dist/cli/bin.js`, "serve", "--data-dir", dataDir, "--api-port", "0", "--pki-port", "0", "--mqtt-port", "0"], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    serve.stderr!.on("data", (d) => (stderr += d));
    const apiUrl = await new Promise<string>((resolve, reject) => {
      const timer = setInterval(() => {
        const match = /API on (https:\/\/\S+)/.exec(stderr);
        if (match) {
          clearInterval(timer);
          resolve(match[1]!);
        } else if (serve!.exitCode !== null) {
          clearInterval(timer);
          reject(new Error(`moat serve exited: ${stderr}`));
        }
      }, 200);
    });
    const ca = ok(await runCli(["--data-dir", dataDir, "ca", "chain"], { env })).stdout;
    expect((await request(`${apiUrl}/v1/devices`, ca, adminToken, "POST", { id: "dev-1" })).status).toBe(201);

    // Rotate and retire v1 from another process while the server keeps running.
    const rotated = JSON.parse(ok(await runCli(["--data-dir", dataDir, "keys", "rotate", "--json"], { env })).stdout) as { rewrapped: number; remaining: number };
    expect(rotated.remaining).toBe(0);
    expect(JSON.parse(ok(await runCli(["--data-dir", dataDir, "keys", "retire", "--json"], { env })).stdout)).toEqual({ retired: [1] });

    // The server has not opened the issuing CA key yet: it does so now, under v2, which it learns from the key file.
    execFileSync("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir.path, "dev.key"), "-out", join(dir.path, "dev.csr"), "-subj", "/CN=dev-1"], { stdio: "ignore" });
    const issued = await request(`${apiUrl}/v1/certificates`, ca, adminToken, "POST", { deviceId: "dev-1", csr: readFileSync(join(dir.path, "dev.csr"), "utf8") });
    expect(issued.status, issued.body).toBe(201);
    expect(serve.exitCode).toBeNull();

    // Everything in the store is wrapped by v2 and no envelope names a KEK the provider lacks.
    const status = JSON.parse(ok(await runCli(["--data-dir", dataDir, "keys", "status", "--json"], { env })).stdout) as { versions: Array<{ version: number; envelopes: number }>; unknown: unknown[] };
    expect(status.versions.map((v) => v.version)).toEqual([2]);
    expect(status.versions[0]!.envelopes).toBeGreaterThanOrEqual(rotated.rewrapped);
    expect(status.unknown).toEqual([]);
  });
});
