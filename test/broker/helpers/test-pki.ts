/**
 * A throw-away CA hierarchy made with the `openssl` command line (root → issuing CA → device and
 * server certificates), so the broker's TLS checks are tested against certificates our own code did
 * not produce. `openssl ca` allows back-dated validity for the expired-certificate case.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface IssuedCert {
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
  /** Lower-case hex without leading zeros. */
  serial: string;
}

export interface TestCa {
  name: string;
  dir: string;
  certPath: string;
  keyPath: string;
  certPem: string;
}

export interface TestPki {
  dir: string;
  root: TestCa;
  issuing: TestCa;
  /** root + issuing, PEM, for clients' --cafile and the broker's trust anchors. */
  chainPath: string;
  chainPem: string;
  server: IssuedCert;
  /** A device certificate from the issuing CA. */
  device(cn: string, options?: { expired?: boolean; days?: number; keyType?: "ec" | "ed25519" }): IssuedCert;
  /** A client certificate signed by the root itself: chains to a trust anchor, but not via the issuing CA. */
  fromRoot(cn: string): IssuedCert;
  /** A second, unrelated hierarchy (for "certificate from another CA"). */
  foreign(): TestCa & { device(cn: string): IssuedCert };
}

function openssl(args: string[], cwd: string): string {
  return execFileSync("openssl", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

const CA_CONFIG = (dir: string) => `
[ ca ]
default_ca = ca_default
[ ca_default ]
dir = ${dir}
database = ${dir}/index.txt
new_certs_dir = ${dir}/newcerts
serial = ${dir}/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
default_days = 30
[ policy_any ]
commonName = supplied
organizationName = optional
[ v3_issuing ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_client ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ v3_server ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

function prepareCaDir(dir: string): string {
  mkdirSync(join(dir, "newcerts"), { recursive: true });
  writeFileSync(join(dir, "index.txt"), "");
  const config = join(dir, "ca.cnf");
  writeFileSync(config, CA_CONFIG(dir));
  return config;
}

function newKey(path: string, cwd: string, keyType: "ec" | "ed25519" = "ec"): void {
  if (keyType === "ed25519") openssl(["genpkey", "-algorithm", "ed25519", "-out", path], cwd);
  else openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path], cwd);
}

function serialOf(certPath: string, cwd: string): string {
  const out = openssl(["x509", "-in", certPath, "-noout", "-serial"], cwd).trim();
  return out.replace(/^serial=/, "").toLowerCase().replace(/^0+/, "");
}

function makeRoot(dir: string, name: string): TestCa {
  mkdirSync(dir, { recursive: true });
  const keyPath = join(dir, "root.key");
  const certPath = join(dir, "root.pem");
  newKey(keyPath, dir);
  openssl(
    ["req", "-x509", "-new", "-key", keyPath, "-subj", `/CN=${name}`, "-days", "3650", "-out", certPath,
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    dir,
  );
  return { name, dir, certPath, keyPath, certPem: readFileSync(certPath, "utf8") };
}

function sign(ca: TestCa, config: string, csr: string, out: string, extensions: string, validity: string[]): void {
  openssl(["ca", "-batch", "-config", config, "-rand_serial", "-notext", "-cert", ca.certPath, "-keyfile", ca.keyPath, "-extensions", extensions, "-in", csr, "-out", out, ...validity], ca.dir);
}

function issue(ca: TestCa, config: string, cn: string, extensions: string, options: { expired?: boolean; days?: number; keyType?: "ec" | "ed25519" } = {}): IssuedCert {
  const base = join(ca.dir, `${cn.replace(/[^A-Za-z0-9._-]/g, "_")}-${Math.random().toString(36).slice(2, 8)}`);
  const keyPath = `${base}.key`;
  const csrPath = `${base}.csr`;
  const certPath = `${base}.pem`;
  newKey(keyPath, ca.dir, options.keyType);
  openssl(["req", "-new", "-key", keyPath, "-subj", `/CN=${cn}`, "-out", csrPath], ca.dir);
  const validity = options.expired ? ["-startdate", "20200101000000Z", "-enddate", "20200201000000Z"] : ["-days", String(options.days ?? 30)];
  sign(ca, config, csrPath, certPath, extensions, validity);
  return { certPath, keyPath, certPem: readFileSync(certPath, "utf8"), keyPem: readFileSync(keyPath, "utf8"), serial: serialOf(certPath, ca.dir) };
}

/** Builds root → issuing CA → server certificate (127.0.0.1, localhost) in `dir`. */
export function createTestPki(dir: string): TestPki {
  const root = makeRoot(join(dir, "root"), "Moat Test Root");
  const rootConfig = prepareCaDir(root.dir);
  const issuingDir = join(dir, "issuing");
  mkdirSync(issuingDir, { recursive: true });
  const issuingKey = join(issuingDir, "issuing.key");
  const issuingCsr = join(issuingDir, "issuing.csr");
  const issuingCert = join(issuingDir, "issuing.pem");
  newKey(issuingKey, issuingDir);
  openssl(["req", "-new", "-key", issuingKey, "-subj", "/CN=Moat Test Issuing CA", "-out", issuingCsr], issuingDir);
  sign(root, rootConfig, issuingCsr, issuingCert, "v3_issuing", ["-days", "1825"]);
  const issuing: TestCa = { name: "Moat Test Issuing CA", dir: issuingDir, certPath: issuingCert, keyPath: issuingKey, certPem: readFileSync(issuingCert, "utf8") };
  const issuingConfig = prepareCaDir(issuingDir);
  const chainPem = issuing.certPem + root.certPem;
  const chainPath = join(dir, "chain.pem");
  writeFileSync(chainPath, chainPem);
  const server = issue(issuing, issuingConfig, "localhost", "v3_server");
  // Serve the chain so clients that trust only the root can build the path.
  writeFileSync(server.certPath, server.certPem + issuing.certPem);
  server.certPem = server.certPem + issuing.certPem;

  return {
    dir,
    root,
    issuing,
    chainPath,
    chainPem,
    server,
    device: (cn, options) => issue(issuing, issuingConfig, cn, "v3_client", options),
    fromRoot: (cn) => issue(root, rootConfig, cn, "v3_client"),
    foreign: () => {
      const other = makeRoot(join(dir, `foreign-${Math.random().toString(36).slice(2, 8)}`), "Someone Else's CA");
      const config = prepareCaDir(other.dir);
      return { ...other, device: (cn: string) => issue(other, config, cn, "v3_client") };
    },
  };
}
