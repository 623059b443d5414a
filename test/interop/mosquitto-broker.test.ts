/**
 * Moat's broker against the Mosquitto command-line clients and `openssl s_client`: real TLS with
 * hostname verification, client certificates and tokens, and the refusals the clients report.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireCommand } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";
import { startTestBroker, type TestBroker } from "../broker/helpers/harness.js";
import { createTestPki, type IssuedCert, type TestPki } from "../broker/helpers/test-pki.js";

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the event loop (the broker under test lives in this process). */
function run(command: string, args: string[], timeoutMs = 15_000): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.stdin.end();
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const ok = requireCommand("openssl", "openssl") && requireCommand("mosquitto_pub", "mosquitto-clients") && requireCommand("mosquitto_sub", "mosquitto-clients");

describe.skipIf(!ok)("interop: mosquitto clients and openssl against the Moat broker", () => {
  const tmp = tempDir("moat-broker-mosq-");
  let pki: TestPki;
  let tb: TestBroker;
  let m1: IssuedCert;
  let commander: IssuedCert;
  let revoked: IssuedCert;
  const secret = randomBytes(32);

  const tlsArgs = (cert?: IssuedCert) => ["-h", "127.0.0.1", "-p", String(tb.port), "--cafile", pki.chainPath, ...(cert ? ["--cert", cert.certPath, "--key", cert.keyPath] : [])];
  const pub = (args: string[]) => run("mosquitto_pub", args);

  beforeAll(async () => {
    pki = createTestPki(tmp.path);
    m1 = pki.device("m1");
    commander = pki.device("commander");
    revoked = pki.device("m2");
    tb = await startTestBroker(pki, { authFailureLimit: 1000 });
    tb.directory.put({ id: "m1", certSerials: [m1.serial], hmacSecrets: [{ secret, notAfter: null }] });
    tb.directory.put({ id: "commander", certSerials: [commander.serial] });
    tb.directory.put({ id: "m2", certSerials: [revoked.serial] });
    tb.policy.addRole({ name: "commander", rules: [{ effect: "allow", action: "publish", resource: "devices/+/commands/#" }] });
    tb.policy.assign("device", "device", "m1");
    tb.policy.assign("device", "device", "m2");
    tb.policy.assign("commander", "device", "commander");
  });

  afterAll(async () => {
    await tb?.close();
    tmp.cleanup();
  });

  it("mosquitto_sub receives what mosquitto_pub sends, both with device certificates and hostname verification", async () => {
    const sub = spawn("mosquitto_sub", [...tlsArgs(m1), "-i", "m1", "-t", "devices/m1/commands/#", "-C", "1", "-W", "15", "-q", "1"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    sub.stdout.on("data", (d) => (out += d));
    sub.stderr.on("data", (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => sub.on("close", resolve));
    await tb.events.waitFor((e) => e.type === "device.connected" && e.subject === "m1");
    // Give the SUBSCRIBE a moment to land after CONNACK.
    await new Promise((r) => setTimeout(r, 300));
    const result = await pub([...tlsArgs(commander), "-i", "commander", "-t", "devices/m1/commands/led", "-m", "on", "-q", "1"]);
    expect(result.status, result.stderr).toBe(0);
    expect(await exited, err).toBe(0);
    expect(out.trim()).toBe("on");
  });

  it("mosquitto_pub without a client certificate is refused: not authorised", async () => {
    const result = await pub([...tlsArgs(), "-i", "m1", "-t", "devices/m1/telemetry/t", "-m", "x"]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/not authori[sz]ed/i);
  });

  it("mosquitto_pub with a client id other than its certificate's is refused: identifier rejected", async () => {
    const result = await pub([...tlsArgs(m1), "-i", "commander", "-t", "devices/m1/telemetry/t", "-m", "x"]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/identifier rejected/i);
  });

  it("mosquitto_pub with a revoked certificate is refused", async () => {
    tb.feed.push({ kind: "cert.revoked", subject: revoked.serial, data: { serial: revoked.serial, deviceId: "m2", issuer: "01", reason: "keyCompromise", revokedAt: new Date().toISOString() } });
    const result = await pub([...tlsArgs(revoked), "-i", "m2", "-t", "devices/m2/telemetry/t", "-m", "x"]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/not authori[sz]ed/i);
    await tb.events.waitFor((e) => e.type === "auth.failed" && e.subject === "m2" && e.data?.reason === "cert_revoked");
  });

  it("mosquitto_pub with a certificate from another CA is refused", async () => {
    const foreign = pki.foreign().device("m1");
    const result = await pub([...tlsArgs(foreign), "-i", "m1", "-t", "devices/m1/telemetry/t", "-m", "x"]);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/not authori[sz]ed/i);
  });

  it("mosquitto_pub with a device token as password (TLS, no client certificate) is accepted", async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("m1").setAudience("moat-mqtt").setIssuedAt(now).setExpirationTime(now + 300).sign(secret);
    const result = await pub([...tlsArgs(), "-i", "m1", "-u", "m1", "-P", token, "-t", "devices/m1/telemetry/t", "-m", "21.5"]);
    expect(result.status, result.stderr).toBe(0);
    await tb.events.waitFor((e) => e.type === "device.connected" && e.subject === "m1" && e.data?.method === "jwt-secret");
  });

  it("mosquitto_sub on # is refused by the broker", async () => {
    const result = await run("mosquitto_sub", [...tlsArgs(m1), "-i", "m1", "-t", "#", "-W", "5"]);
    expect(result.stderr).toMatch(/subscription requests were denied/i);
  });

  it("openssl s_client: TLS 1.1 is refused, TLS 1.2 is accepted", async () => {
    const connect = ["-connect", `127.0.0.1:${tb.port}`, "-servername", "localhost", "-CAfile", pki.chainPath];
    // SECLEVEL=0 lets the client offer TLS 1.1 at all, so the refusal comes from the server.
    const old = await run("openssl", ["s_client", ...connect, "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    expect(old.status).not.toBe(0);
    expect(old.stdout + old.stderr).toMatch(/protocol version|unsupported protocol/i);
    const modern = await run("openssl", ["s_client", ...connect, "-tls1_2"]);
    expect(modern.stdout).toMatch(/Protocol\s*: TLSv1\.2/);
    expect(modern.stdout).toMatch(/Verify return code: 0 \(ok\)/);
    expect(modern.stdout).toMatch(/Cipher\s*: ECDHE-/);
  });
});
