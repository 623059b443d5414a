import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseOperatorToken } from "../../src/identity/index.js";
import { runCli } from "../helpers/cli.js";
import { requireCommand } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";

describe("moat CLI on the embedded default (SQLite)", () => {
  const dir = tempDir();
  const dataDir = join(dir.path, "data");
  const moat = (...args: string[]) => runCli(["--data-dir", dataDir, ...args]);
  let adminToken: string;

  beforeAll(async () => {
    const init = await moat("init", "--trust-domain", "plant.example", "--json");
    expect(init.stderr).toBe("");
    expect(init.code).toBe(0);
    adminToken = JSON.parse(init.stdout).adminToken;
  });
  afterAll(() => dir.cleanup());

  it("prints the admin token once and never stores it", () => {
    expect(adminToken).toMatch(/^moat_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const secret = parseOperatorToken(adminToken)!.secret;
    for (const file of readdirSync(dataDir)) expect(readFileSync(join(dataDir, file)).includes(Buffer.from(secret))).toBe(false);
  });

  it("keeps secrets owner-only and no private key in plaintext anywhere in the data dir", () => {
    expect(statSync(join(dataDir, "kek.key")).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, "moat.db")).mode & 0o777).toBe(0o600);
    for (const file of readdirSync(dataDir)) {
      const bytes = readFileSync(join(dataDir, file));
      expect([file, bytes.includes(Buffer.from("PRIVATE KEY"))]).toEqual([file, false]);
    }
  });

  it("refuses a second init and changes nothing", async () => {
    const before = readdirSync(dataDir).map((f) => [f, readFileSync(join(dataDir, f)).toString("base64")]);
    const again = await moat("init");
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("DATA_DIR_ALREADY_INITIALIZED");
    expect(readdirSync(dataDir).map((f) => [f, readFileSync(join(dataDir, f)).toString("base64")])).toEqual(before);
  });

  it("moat ca chain gives issuing then root, and openssl verifies the server certificate", async () => {
    if (!requireCommand("openssl", "openssl")) return;
    const chain = await moat("ca", "chain");
    expect(chain.code).toBe(0);
    const pems = chain.stdout.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g)!;
    expect(pems).toHaveLength(2);
    writeFileSync(join(dir.path, "issuing.pem"), pems[0]!);
    writeFileSync(join(dir.path, "root.pem"), pems[1]!);
    const db = new Database(join(dataDir, "moat.db"), { readonly: true });
    const server = db.prepare("select certificate_pem from ca_certificates where role = 'server'").get() as { certificate_pem: string };
    db.close();
    writeFileSync(join(dir.path, "server.pem"), server.certificate_pem);
    const out = execFileSync("openssl", ["verify", "-CAfile", "root.pem", "-untrusted", "issuing.pem", "-purpose", "sslserver", "server.pem"], { cwd: dir.path }).toString();
    expect(out.trim()).toBe("server.pem: OK");
    expect(execFileSync("openssl", ["x509", "-in", "issuing.pem", "-noout", "-subject"], { cwd: dir.path }).toString()).toContain("O = plant.example");
  });

  it("manages devices with --json output, exit codes 1 for failures and 2 for usage errors", async () => {
    expect((await moat("device", "add", "pump-7", "--group", "water", "--attr", "site=north")).code).toBe(0);
    const list = await moat("device", "list", "--json");
    expect(JSON.parse(list.stdout).devices).toEqual([expect.objectContaining({ id: "pump-7", group: "water", attributes: { site: "north" } })]);
    expect(JSON.parse((await moat("device", "quarantine", "pump-7", "--reason", "beaconing", "--json")).stdout).status).toBe("quarantined");
    const bad = await moat("device", "add", "bad id");
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringContaining("DEVICE_ID_INVALID")]);
    const usage = await moat("device", "list", "--limit", "many");
    expect(usage.code).toBe(2);
    const help = await moat("device", "add", "--help");
    expect([help.code, help.stdout]).toEqual([0, expect.stringContaining("Example:")]);
  });

  it("tokens: create prints once, list --json hides secrets, revoke", async () => {
    const created = await moat("token", "create", "ci", "--role", "auditor", "--expires", "1d", "--json");
    const { token } = JSON.parse(created.stdout);
    const list = await moat("token", "list", "--json");
    expect(list.stdout).not.toContain(parseOperatorToken(token)!.secret);
    expect(JSON.parse(list.stdout).map((t: { name: string }) => t.name)).toEqual(["admin", "ci"]);
    expect((await moat("token", "revoke", "ci")).code).toBe(0);
  });

  it("audit verify passes, then fails naming the entry edited in the database", async () => {
    const ok = await moat("audit", "verify", "--json");
    expect([ok.code, JSON.parse(ok.stdout).ok]).toEqual([0, true]);
    const db = new Database(join(dataDir, "moat.db"));
    db.prepare("update audit_events set subject = 'someone-else' where seq = 2").run();
    db.close();
    const broken = await moat("audit", "verify");
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain("[AUDIT_CHAIN_BROKEN] at entry 2");
  });

  it("a missing KEK file stops every command with KEK_MISSING and nothing is overwritten", async () => {
    const kek = readFileSync(join(dataDir, "kek.key"));
    const other = tempDir();
    try {
      execFileSync("cp", ["-a", dataDir, join(other.path, "d")]);
      execFileSync("rm", [join(other.path, "d", "kek.key")]);
      const missing = await runCli(["--data-dir", join(other.path, "d"), "device", "list"]);
      expect([missing.code, missing.stderr]).toEqual([1, expect.stringContaining("KEK_MISSING")]);
      writeFileSync(join(other.path, "d", "kek.key"), randomBytes(32).toString("base64"), { mode: 0o600 });
      const wrong = await runCli(["--data-dir", join(other.path, "d"), "device", "list"]);
      expect([wrong.code, wrong.stderr]).toEqual([1, expect.stringContaining("KEK_MISMATCH")]);
      const env = await runCli(["--data-dir", join(other.path, "d"), "device", "list"], { env: { MOAT_MASTER_KEY: kek.toString().trim() } });
      expect(env.code).toBe(0);
    } finally {
      other.cleanup();
    }
    expect(readFileSync(join(dataDir, "kek.key")).equals(kek)).toBe(true);
  });

  it("an unreachable database is a clear error with exit 1", async () => {
    const result = await runCli(["--data-dir", dataDir, "device", "list"], { env: { MOAT_DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" } });
    expect([result.code, result.stderr]).toEqual([1, expect.stringContaining("STORE_UNREACHABLE")]);
  });

  it("a bad setting stops start-up naming the setting and what is allowed", async () => {
    const result = await runCli(["--data-dir", dataDir, "device", "list"], { env: { MOAT_API_PORT: "99999" } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("CONFIG_INVALID");
    expect(result.stderr).toContain("'apiPort' (from MOAT_API_PORT)");
    expect(result.stderr).toContain("an integer from 0 to 65535");
  });

  it("a command on an uninitialised data dir says to run moat init", async () => {
    const empty = tempDir();
    try {
      const result = await runCli(["--data-dir", join(empty.path, "none"), "device", "list"]);
      expect([result.code, result.stderr]).toEqual([1, expect.stringContaining("DATA_DIR_NOT_INITIALIZED")]);
    } finally {
      empty.cleanup();
    }
  });
});
