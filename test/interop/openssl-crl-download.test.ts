/**
 * The CRL and OCSP URLs written into certificates lead to the running PKI listener: `moat init
 * --public-url` chooses them, `openssl verify -crl_download` follows them, and `moat serve` warns when
 * its PKI listener does not answer the URLs in the CA certificates.
 */
import { execFile, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { requireCommand } from "../helpers/requirements.js";
import { spawnServe } from "../helpers/serve.js";
import { tempDir } from "../helpers/temp.js";
import { freePort } from "../../src/lib/free-port.js";

const ok = requireCommand("openssl", "openssl");


/**
 * openssl verify fetching the CRL named in `cert` over HTTP, bounded so a closed or silent port cannot
 * hang the test. (-crl_check_all would also want a CRL for the self-signed root, which names none.)
 */
function verifyWithCrlDownload(chain: string, cert: string): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile("openssl", ["verify", "-crl_check", "-crl_download", "-CAfile", chain, cert], { timeout: 20_000 }, (error, stdout, stderr) =>
      resolve({ ok: !error, output: `${stdout}${stderr}` }),
    );
  });
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!ok)("PKI URLs in certificates (openssl verify -crl_download)", () => {
  const dirs: { cleanup(): void }[] = [];
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
    for (const dir of dirs.splice(0)) dir.cleanup();
  });

  it("moat init --public-url writes URLs that a served PKI port answers; openssl downloads both CRLs and verifies", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const dataDir = join(dir.path, "data");
    const pkiPort = await freePort();
    expect((await runCli(["--data-dir", dataDir, "init", "--public-url", `http://127.0.0.1:${pkiPort}`])).code).toBe(0);
    expect((await runCli(["--data-dir", dataDir, "device", "add", "cam-1"])).code).toBe(0);
    const certFile = join(dir.path, "cam-1.pem");
    const issued = await runCli(["--data-dir", dataDir, "cert", "issue", "--device", "cam-1", "--generate-key", "--key-out", join(dir.path, "cam-1.key"), "--out", certFile]);
    expect(issued.code).toBe(0);
    const chainFile = join(dir.path, "chain.pem");
    writeFileSync(chainFile, (await runCli(["--data-dir", dataDir, "ca", "chain"])).stdout);

    const serve = spawnServe(["--data-dir", dataDir, "--pki-port", String(pkiPort)]);
    children.push(serve.child);
    await serve.ready;
    // The device certificate's CRL (the issuing CA's), then the issuing CA certificate's (the root's).
    const verified = await verifyWithCrlDownload(chainFile, certFile);
    expect(verified.output, verified.output).toContain(`${certFile}: OK`);
    expect(verified.ok).toBe(true);
    const issuingFile = join(dir.path, "issuing.pem");
    writeFileSync(issuingFile, (await runCli(["--data-dir", dataDir, "ca", "chain"])).stdout.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n");
    const issuing = await verifyWithCrlDownload(chainFile, issuingFile);
    expect(issuing.output, issuing.output).toContain(`${issuingFile}: OK`);
    // The start-up check has had time to run: these URLs are answered, so no warning.
    await settle(1_000);
    expect(serve.stderr()).not.toContain("does not answer here");
  });

  it("moat serve warns when its PKI port is not the one named in the CA certificates", async () => {
    const dir = tempDir();
    dirs.push(dir);
    const dataDir = join(dir.path, "data");
    const initPort = await freePort();
    expect((await runCli(["--data-dir", dataDir, "init", "--pki-port", String(initPort)])).code).toBe(0);
    const servePort = await freePort();
    const serve = spawnServe(["--data-dir", dataDir, "--pki-port", String(servePort)]);
    children.push(serve.child);
    await serve.ready;
    for (let i = 0; i < 40 && !serve.stderr().includes("does not answer here"); i++) await settle(250);
    expect(serve.stderr()).toContain("does not answer here");
    expect(serve.stderr()).toContain(`http://127.0.0.1:${initPort}/crl/root`);
  });
});
