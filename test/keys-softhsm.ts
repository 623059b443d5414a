import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, type MoatConfig } from "../src/config/index.js";
import { hasCommand, requirement } from "./helpers/requirements.js";

/** SoftHSM2's PKCS#11 module as Debian's `softhsm2` package installs it. */
export const SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so";

/** True when SoftHSM2 is usable; loud skip outside CI, failure under CI=true. */
export function softHsmAvailable(): boolean {
  return requirement("SoftHSM2", existsSync(SOFTHSM_MODULE) && hasCommand("softhsm2-util"), "install it with: apt-get install -y softhsm2");
}

/**
 * Writes a private SoftHSM configuration whose token directory is inside `dir`, points this process
 * at it (SOFTHSM2_CONF is read when the module initialises) and creates the named tokens.
 * Returns the environment a child process needs to see the same tokens.
 */
export function makeSoftHsm(dir: string, tokens: { label: string; pin: string }[]): { conf: string; env: NodeJS.ProcessEnv } {
  const tokenDir = join(dir, "tokens");
  mkdirSync(tokenDir, { recursive: true, mode: 0o700 });
  const conf = join(dir, "softhsm2.conf");
  writeFileSync(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, { mode: 0o600 });
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  for (const token of tokens)
    execFileSync("softhsm2-util", ["--init-token", "--free", "--label", token.label, "--pin", token.pin, "--so-pin", `${token.pin}-so`], { env, stdio: "ignore" });
  process.env.SOFTHSM2_CONF = conf;
  return { conf, env };
}

/**
 * A SoftHSM token `label` (PIN in a 0600 file) in `dir` and the configuration of an installation
 * under `<dir>/data` with keys.provider=pkcs11 on it.
 */
export function softHsmInstallationConfig(dir: string, label: string, pin: string): MoatConfig {
  makeSoftHsm(dir, [{ label, pin }]);
  const pinFile = join(dir, "pin");
  writeFileSync(pinFile, pin, { mode: 0o600 });
  return loadConfig({
    env: {},
    flags: {
      dataDir: join(dir, "data"),
      logLevel: "silent",
      "keys.provider": "pkcs11",
      "keys.pkcs11Module": SOFTHSM_MODULE,
      "keys.pkcs11TokenLabel": label,
      "keys.pkcs11PinFile": pinFile,
    },
  });
}
