import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PkiHttpServer } from "../src/api/index.js";
import { loadConfig, type MoatConfig } from "../src/config/index.js";
import { CA_KEY_LABEL_PREFIX, Pkcs11Token, pkcs11ConfigFrom } from "../src/keys/index.js";
import { createApp, initialize, type App } from "../src/core.js";
import { parseCertificate, toPem } from "../src/pki/index.js";
import { runCli } from "./helpers/cli.js";
import { requireCommand } from "./helpers/requirements.js";
import { tempDir } from "./helpers/temp.js";
import { SOFTHSM_MODULE, makeSoftHsm, softHsmAvailable } from "./keys-softhsm.js";

const ok = softHsmAvailable() && requireCommand("openssl", "openssl");
const run = promisify(execFile);
const PIN = "2468-ca-test";
const TOKEN = "moat-ca";

/** Runs a command; stdout+stderr and the exit code (never throws). */
async function sh(command: string, args: string[]): Promise<{ out: string; code: number }> {
  try {
    const { stdout, stderr } = await run(command, args, { encoding: "utf8" });
    return { out: stdout + stderr, code: 0 };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; code?: number };
    return { out: (e.stdout ?? "") + (e.stderr ?? ""), code: typeof e.code === "number" ? e.code : 1 };
  }
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

interface CaRow {
  role: string;
  serial: string;
  sealed_key: Buffer | null;
  key_location: string | null;
}

describe.skipIf(!ok)("moat init --ca-keys pkcs11 (SoftHSM2 token made by this test)", () => {
  const dir = tempDir("moat-ca-pkcs11-");
  const file = (name: string) => join(dir.path, name);
  const pinFile = file("pin");
  const wrongPinFile = file("wrong-pin");
  let softhsmEnv: NodeJS.ProcessEnv = {};
  let config: MoatConfig;
  let app: App | undefined;

  const configFor = (dataDir: string, pin = pinFile, provider = "pkcs11") =>
    loadConfig({
      env: {},
      flags: {
        dataDir,
        logLevel: "silent",
        "feed.pollMs": 50,
        "keys.provider": provider,
        "keys.pkcs11Module": SOFTHSM_MODULE,
        "keys.pkcs11TokenLabel": TOKEN,
        "keys.pkcs11PinFile": pin,
      },
    });

  beforeAll(async () => {
    softhsmEnv = makeSoftHsm(dir.path, [{ label: TOKEN, pin: PIN }]).env;
    writeFileSync(pinFile, PIN, { mode: 0o600 });
    writeFileSync(wrongPinFile, "0000-not-it", { mode: 0o600 });
    config = configFor(file("data"));
    app = (await initialize(config, { trustDomain: "p11.test", keyType: "ec-p256", hostnames: ["localhost", "127.0.0.1"], caKeys: "pkcs11" })).app;
    writeFileSync(file("root.pem"), await app.ca.rootPem());
    writeFileSync(file("issuing.pem"), (await app.ca.active("issuing")).certificatePem);
    writeFileSync(file("chain.pem"), await app.ca.chainPem());
  });
  afterAll(async () => {
    await app?.close();
    dir.cleanup();
  });

  const caRows = (dataDir: string): CaRow[] => {
    const db = new Database(join(dataDir, "moat.db"), { readonly: true });
    try {
      return db.prepare("select role, serial, sealed_key, key_location from ca_certificates order by role").all() as CaRow[];
    } finally {
      db.close();
    }
  };

  const newCsr = async (name: string, cn: string) => {
    const made = await sh("openssl", ["req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`), "-subj", `/CN=${cn}`]);
    expect(made.code).toBe(0);
    return readFileSync(file(`${name}.csr`), "utf8");
  };

  it("stores only the key locations: root and issuing rows have no sealed key, the token keys are non-extractable", () => {
    const rows = caRows(config.dataDir);
    const byRole = Object.fromEntries(rows.map((r) => [r.role, r]));
    for (const role of ["root", "issuing"]) {
      expect(byRole[role]!.sealed_key).toBeNull();
      expect(byRole[role]!.key_location).toMatch(new RegExp(`^pkcs11:${TOKEN}/${CA_KEY_LABEL_PREFIX}${role}-[0-9a-f]{12}$`));
    }
    // The TLS server key stays a software key, sealed by the envelope (never plaintext).
    expect(byRole.server!.key_location).toBeNull();
    expect(byRole.server!.sealed_key!.length).toBeGreaterThan(0);
    expect(byRole.server!.sealed_key!.toString("latin1")).not.toContain("PRIVATE KEY");
    // No file in the data dir holds a PEM private key.
    for (const path of filesUnder(config.dataDir)) expect(readFileSync(path).toString("latin1"), path).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);

    // The keys in the token: sensitive, non-extractable, their value unreadable, and the certificates carry their public keys.
    const token = Pkcs11Token.open(pkcs11ConfigFrom(config));
    try {
      for (const role of ["root", "issuing"] as const) {
        const label = byRole[role]!.key_location!.split("/")[1]!;
        const [key] = token.find("private", label);
        expect(key, label).toBeDefined();
        expect(token.protection(key!.handle)).toEqual({ extractable: false, sensitive: true });
        expect(token.valueIsReadable(key!.handle)).toBe(false);
        const [publicObject] = token.find("public", label);
        const certificate = parseCertificate(Buffer.from(readFileSync(file(`${role}.pem`), "utf8").replace(/-----[A-Z ]+-----|\s/g, ""), "base64"));
        expect(token.p256PublicKey(publicObject!.handle).export({ format: "der", type: "spki" })).toEqual(certificate.spkiDer);
      }
    } finally {
      token.close();
    }
  });

  it("signs device certificates, CRLs and OCSP responses in the token; openssl verifies all three", async () => {
    const a = app!;
    await a.devices.create({ id: "p11-dev-1", status: "active" }, "test");
    await a.devices.create({ id: "p11-dev-2", status: "active" }, "test");
    const first = await a.pki.certificates.issueFromCsr({ deviceId: "p11-dev-1", csr: await newCsr("dev1", "p11-dev-1"), actor: "test" });
    const second = await a.pki.certificates.issueFromCsr({ deviceId: "p11-dev-2", csr: await newCsr("dev2", "p11-dev-2"), actor: "test" });
    writeFileSync(file("dev1.pem"), first.certificatePem);
    writeFileSync(file("dev2.pem"), second.certificatePem);
    const verified = await sh("openssl", ["verify", "-purpose", "sslclient", "-CAfile", file("root.pem"), "-untrusted", file("issuing.pem"), file("dev1.pem")]);
    expect(verified.out).toContain(": OK");
    expect(verified.code).toBe(0);

    await a.pki.certificates.revoke(second.serialHex, "keyCompromise", "test");
    const issuingCrl = await a.pki.crls.current();
    const rootCrl = await a.pki.crls.current("root");
    writeFileSync(file("issuing.crl"), toPem(issuingCrl.der, "X509 CRL"));
    writeFileSync(file("crls.pem"), toPem(issuingCrl.der, "X509 CRL") + toPem(rootCrl.der, "X509 CRL"));
    const crlCheck = await sh("openssl", ["crl", "-in", file("issuing.crl"), "-CAfile", file("chain.pem"), "-noout"]);
    expect(crlCheck.out).toContain("verify OK");
    const revokedCheck = await sh("openssl", ["verify", "-crl_check_all", "-CAfile", file("root.pem"), "-untrusted", file("issuing.pem"), "-CRLfile", file("crls.pem"), file("dev2.pem")]);
    expect(revokedCheck.out).toContain("certificate revoked");
    const goodCheck = await sh("openssl", ["verify", "-crl_check_all", "-CAfile", file("root.pem"), "-untrusted", file("issuing.pem"), "-CRLfile", file("crls.pem"), file("dev1.pem")]);
    expect(goodCheck.code).toBe(0);

    const pkiServer = new PkiHttpServer(a, { host: "127.0.0.1", port: 0 });
    try {
      const url = `http://127.0.0.1:${(await pkiServer.listen()).port}/ocsp`;
      const ocsp = (cert: string) => sh("openssl", ["ocsp", "-issuer", file("issuing.pem"), "-cert", cert, "-url", url, "-CAfile", file("chain.pem"), "-resp_text"]);
      const good = await ocsp(file("dev1.pem"));
      expect(good.out).toContain("Response verify OK");
      expect(good.out).toMatch(/dev1\.pem: good/);
      const revoked = await ocsp(file("dev2.pem"));
      expect(revoked.out).toContain("Response verify OK");
      expect(revoked.out).toMatch(/dev2\.pem: revoked/);
    } finally {
      await pkiServer.close();
    }
  });

  it("refuses to export, take offline or replace a token-held root, and refuses --ca-keys pkcs11 without a token or with another key type", async () => {
    const a = app!;
    const root = await a.ca.active("root");
    await expect(a.ca.privateKeyDer(root.serialHex)).rejects.toMatchObject({ code: "PKI_CA_KEY_IN_TOKEN" });
    await expect(a.ca.forgetRootKey("test")).rejects.toMatchObject({ code: "PKI_CA_KEY_IN_TOKEN" });
    expect((await a.ca.active("root")).hasKey).toBe(true);

    const fileDataDir = file("data-file-kek");
    await expect(initialize(configFor(fileDataDir, pinFile, "file"), { trustDomain: "p11.test", keyType: "ec-p256", hostnames: ["localhost"], caKeys: "pkcs11" })).rejects.toMatchObject({
      code: "CONFIG_INVALID",
      message: expect.stringContaining("keys.provider=pkcs11"),
    });
    expect(existsSync(fileDataDir)).toBe(false);
    const p384DataDir = file("data-p384");
    await expect(initialize(configFor(p384DataDir), { trustDomain: "p11.test", keyType: "ec-p384", hostnames: ["localhost"], caKeys: "pkcs11" })).rejects.toMatchObject({
      code: "CONFIG_INVALID",
      message: expect.stringContaining("--key-type ec-p384"),
    });
    expect(existsSync(p384DataDir)).toBe(false);
  });

  it("after a restart the CA keys are found by their location: the issuer rotates in the token and its certificates verify", async () => {
    await app!.close();
    app = await createApp(config);
    const rotated = await app.ca.rotateIssuer({ trustDomain: "p11.test" }, "test");
    const rows = caRows(config.dataDir).filter((r) => r.serial === rotated.serialHex);
    expect(rows[0]!.sealed_key).toBeNull();
    expect(rows[0]!.key_location).toMatch(new RegExp(`^pkcs11:${TOKEN}/${CA_KEY_LABEL_PREFIX}issuing-`));
    // What the ca.changed feed entry does in a serving process: drop the cached issuer.
    app.pki.issuers.invalidate();
    await app.devices.create({ id: "p11-dev-3", status: "active" }, "test");
    const issued = await app.pki.certificates.issueFromCsr({ deviceId: "p11-dev-3", csr: await newCsr("dev3", "p11-dev-3"), actor: "test" });
    expect(issued.issuingCaPem.trim()).toBe(rotated.certificatePem.trim());
    writeFileSync(file("issuing2.pem"), rotated.certificatePem);
    writeFileSync(file("dev3.pem"), issued.certificatePem);
    const verified = await sh("openssl", ["verify", "-CAfile", file("root.pem"), "-untrusted", file("issuing2.pem"), file("dev3.pem")]);
    expect(verified.out).toContain(": OK");
  });

  it("a wrong PIN stops the start with PKCS11_LOGIN_FAILED", async () => {
    // Login state is per process: close every session first so the wrong PIN really reaches C_Login.
    await app!.close();
    app = undefined;
    await expect(createApp(configFor(config.dataDir, wrongPinFile))).rejects.toMatchObject({ code: "PKCS11_LOGIN_FAILED" });
  });

  it("the CLI: moat init --ca-keys pkcs11 reports the token locations; moat ca list shows them; a wrong PIN fails the start", async () => {
    const dataDir = file("data-cli");
    const env = {
      ...softhsmEnv,
      MOAT_MASTER_KEY: "",
      MOAT_KEYS_PROVIDER: "pkcs11",
      MOAT_KEYS_PKCS11_MODULE: SOFTHSM_MODULE,
      MOAT_KEYS_PKCS11_TOKEN_LABEL: TOKEN,
      MOAT_KEYS_PKCS11_PIN_FILE: pinFile,
    };
    const init = await runCli(["--data-dir", dataDir, "init", "--ca-keys", "pkcs11", "--trust-domain", "cli.p11.test", "--json"], { env });
    expect(init.stderr).toBe("");
    expect(init.code).toBe(0);
    const result = JSON.parse(init.stdout) as { caKeys: string; rootKeyLocation: string; issuingKeyLocation: string };
    expect(result.caKeys).toBe("pkcs11");
    expect(result.rootKeyLocation).toMatch(new RegExp(`^pkcs11:${TOKEN}/${CA_KEY_LABEL_PREFIX}root-`));
    expect(result.issuingKeyLocation).toMatch(new RegExp(`^pkcs11:${TOKEN}/${CA_KEY_LABEL_PREFIX}issuing-`));
    const rows = caRows(dataDir);
    expect(rows.filter((r) => r.role !== "server").every((r) => r.sealed_key === null && r.key_location !== null)).toBe(true);

    const list = await runCli(["--data-dir", dataDir, "ca", "list", "--json"], { env });
    expect(list.code).toBe(0);
    const listed = (JSON.parse(list.stdout) as { certificates: { role: string; keyLocation: string | null }[] }).certificates;
    expect(listed.find((c) => c.role === "root")!.keyLocation).toBe(result.rootKeyLocation);

    const denied = await runCli(["--data-dir", dataDir, "ca", "list", "--json"], { env: { ...env, MOAT_KEYS_PKCS11_PIN_FILE: wrongPinFile } });
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain("PKCS11_LOGIN_FAILED");

    const refused = await runCli(["--data-dir", file("data-cli-2"), "init", "--ca-keys", "pkcs11"], { env: { ...env, MOAT_KEYS_PROVIDER: "file" } });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("CONFIG_INVALID");
  });
});
