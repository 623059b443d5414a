import { createPrivateKey } from "node:crypto";
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config/index.js";
import { createApp } from "../src/core.js";
import { runCli, type CliResult } from "./helpers/cli.js";
import { tempDir } from "./helpers/temp.js";
import { SOFTHSM_MODULE, makeSoftHsm, softHsmAvailable } from "./keys-softhsm.js";

const ok = (result: CliResult) => {
  if (result.code !== 0) throw new Error(`moat exited ${result.code}: ${result.stderr}`);
  return result;
};
const json = <T>(result: CliResult): T => JSON.parse(ok(result).stdout) as T;

/** Every regular file under `dir`, with its bytes. */
function filesUnder(dir: string): Array<{ path: string; bytes: Buffer }> {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .map((path) => ({ path, bytes: readFileSync(path) }));
}

/** Secrets that must never appear in the data dir in the clear: CA keys, their scalars, tokens, data. */
async function secretsOf(dataDir: string, env: Record<string, string>, extra: string[]): Promise<Array<{ what: string; bytes: Buffer }>> {
  const app = await createApp(loadConfig({ env, flags: { dataDir } }));
  try {
    const secrets: Array<{ what: string; bytes: Buffer }> = extra.map((text) => ({ what: `"${text.slice(0, 12)}…"`, bytes: Buffer.from(text) }));
    for (const role of ["root", "issuing", "server"] as const) {
      const certificate = await app.ca.active(role);
      const pkcs8 = await app.ca.privateKeyDer(certificate.serialHex);
      const jwk = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }).export({ format: "jwk" });
      secrets.push({ what: `${role} CA key (PKCS#8)`, bytes: pkcs8 });
      secrets.push({ what: `${role} CA private scalar`, bytes: Buffer.from(jwk.d!, "base64url") });
      secrets.push({ what: `${role} CA private scalar (base64)`, bytes: Buffer.from(jwk.d!) });
    }
    return secrets;
  } finally {
    await app.close();
  }
}

function expectNoPlaintextSecrets(dataDir: string, secrets: Array<{ what: string; bytes: Buffer }>): void {
  const files = filesUnder(dataDir);
  expect(files.length).toBeGreaterThan(0);
  for (const { path, bytes } of files) {
    expect(bytes.includes(Buffer.from("PRIVATE KEY")), `${path} holds a PEM private key`).toBe(false);
    for (const secret of secrets) expect(bytes.includes(secret.bytes), `${path} holds ${secret.what} in the clear`).toBe(false);
    expect(statSync(path).mode & 0o077, `${path} is readable by others`).toBe(0);
  }
}

describe("moat keys / data with the KEK file", () => {
  const dir = tempDir("moat-keys-cli-");
  const dataDir = join(dir.path, "data");
  const cli = (...args: string[]) => runCli(["--data-dir", dataDir, ...args], { env: { MOAT_MASTER_KEY: "" } });
  afterAll(() => dir.cleanup());

  it("encrypts files, rotates the KEK, retires the old version, and leaves no plaintext secret in the data dir", async () => {
    const init = json<{ adminToken: string }>(await cli("init", "--trust-domain", "keys.test", "--json"));
    const plain = join(dir.path, "readings.csv");
    writeFileSync(plain, "site,temp\nboiler-7,81.5\ncombination 4711-SECRET\n");
    ok(await cli("data", "encrypt", "--in", plain, "--out", join(dir.path, "readings.enc"), "--context", "site-7/readings"));
    expect(statSync(join(dir.path, "readings.enc")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir.path, "readings.enc")).includes(Buffer.from("4711-SECRET"))).toBe(false);
    const wrongContext = await cli("data", "decrypt", "--in", join(dir.path, "readings.enc"), "--out", join(dir.path, "x.csv"), "--context", "site-8/readings");
    expect(wrongContext.code).toBe(1);
    expect(wrongContext.stderr).toContain("ENVELOPE_DECRYPT_FAILED");
    expect(existsSync(join(dir.path, "x.csv"))).toBe(false);

    const rotated = json<{ rewrapped: number; remaining: number; target: { version: number } }>(await cli("keys", "rotate", "--json"));
    expect(rotated.target.version).toBe(2);
    expect(rotated.rewrapped).toBeGreaterThanOrEqual(4);
    expect(rotated.remaining).toBe(0);
    // The file lives outside the database: rewrap it before the old version goes.
    expect(json<Array<{ rewrapped: boolean }>>(await cli("data", "rewrap", join(dir.path, "readings.enc"), "--json"))).toEqual([{ file: join(dir.path, "readings.enc"), rewrapped: true }]);
    expect(json<{ retired: number[] }>(await cli("keys", "retire", "--json"))).toEqual({ retired: [1] });
    const status = json<{ provider: string; versions: Array<{ version: number; current: boolean; envelopes: number }> }>(await cli("keys", "status", "--json"));
    expect(status.provider).toBe("file");
    expect(status.versions).toEqual([expect.objectContaining({ version: 2, current: true, envelopes: rotated.rewrapped })]);

    ok(await cli("data", "decrypt", "--in", join(dir.path, "readings.enc"), "--out", join(dir.path, "back.csv"), "--context", "site-7/readings"));
    expect(readFileSync(join(dir.path, "back.csv"), "utf8")).toContain("4711-SECRET");

    const secrets = await secretsOf(dataDir, {}, [init.adminToken, "4711-SECRET", "moat-kek-check-v1"]);
    expectNoPlaintextSecrets(dataDir, secrets);
  });
});

describe.skipIf(!softHsmAvailable())("moat with keys.provider=pkcs11 (SoftHSM2 token made by this test)", () => {
  const dir = tempDir("moat-keys-p11-cli-");
  const dataDir = join(dir.path, "data");
  const pinFile = join(dir.path, "pin");
  const { env: hsmEnv } = makeSoftHsm(join(dir.path, "hsm"), [{ label: "moat-kek", pin: "2468-p11" }]);
  writeFileSync(pinFile, "2468-p11\n", { mode: 0o600 });
  const env = {
    SOFTHSM2_CONF: hsmEnv.SOFTHSM2_CONF!,
    MOAT_MASTER_KEY: "",
    MOAT_KEYS_PROVIDER: "pkcs11",
    MOAT_KEYS_PKCS11_MODULE: SOFTHSM_MODULE,
    MOAT_KEYS_PKCS11_TOKEN_LABEL: "moat-kek",
    MOAT_KEYS_PKCS11_PIN_FILE: pinFile,
  };
  const cli = (args: string[], extra: Record<string, string> = {}) => runCli(["--data-dir", dataDir, ...args], { env: { ...env, ...extra } });
  afterAll(() => dir.cleanup());

  it("keeps the KEK in the token: init writes no key file, data round-trips, rotation adds a token version", async () => {
    const init = json<{ adminToken: string }>(await cli(["init", "--trust-domain", "p11.test", "--json"]));
    expect(existsSync(join(dataDir, "kek.key"))).toBe(false);
    const plain = join(dir.path, "note.txt");
    writeFileSync(plain, "pkcs11 protected note 9931");
    ok(await cli(["data", "encrypt", "--in", plain, "--out", join(dir.path, "note.enc")]));
    ok(await cli(["data", "decrypt", "--in", join(dir.path, "note.enc"), "--out", join(dir.path, "note.out")]));
    expect(readFileSync(join(dir.path, "note.out"), "utf8")).toBe("pkcs11 protected note 9931");

    const rotated = json<{ target: { version: number }; remaining: number }>(await cli(["keys", "rotate", "--json"]));
    expect(rotated).toMatchObject({ target: { version: 2 }, remaining: 0 });
    const status = json<{ provider: string; versions: Array<{ version: number; location: string; envelopes: number }> }>(await cli(["keys", "status", "--json"]));
    expect(status.provider).toBe("pkcs11");
    expect(status.versions.map((v) => [v.version, v.location, v.envelopes > 0])).toEqual([
      [1, "pkcs11:moat-kek/moat-kek-v1", false],
      [2, "pkcs11:moat-kek/moat-kek-v2", true],
    ]);
    // The file sealed under v1 still opens (v1 is kept until retired).
    ok(await cli(["data", "decrypt", "--in", join(dir.path, "note.enc"), "--out", join(dir.path, "note2.out")]));

    const secrets = await secretsOf(dataDir, { MOAT_KEYS_PROVIDER: "pkcs11", MOAT_KEYS_PKCS11_MODULE: SOFTHSM_MODULE, MOAT_KEYS_PKCS11_TOKEN_LABEL: "moat-kek", MOAT_KEYS_PKCS11_PIN_FILE: pinFile }, [
      init.adminToken,
      "moat-kek-check-v1",
    ]);
    expectNoPlaintextSecrets(dataDir, secrets);
  });

  it("refuses a wrong PIN and a PIN file others can read, with specific codes", async () => {
    const wrong = join(dir.path, "wrong-pin");
    writeFileSync(wrong, "0000", { mode: 0o600 });
    const denied = await cli(["keys", "status"], { MOAT_KEYS_PKCS11_PIN_FILE: wrong });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("PKCS11_LOGIN_FAILED");
    expect(denied.stderr).not.toContain("2468-p11");
    chmodSync(wrong, 0o644);
    const open = await cli(["keys", "status"], { MOAT_KEYS_PKCS11_PIN_FILE: wrong });
    expect(open.stderr).toContain("PKCS11_PIN_MISSING");
  });
});
