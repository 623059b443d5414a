import { closeSync, fstatSync, openSync, readFileSync } from "node:fs";
import type { MoatConfig } from "../config/index.js";
import { MoatError } from "../errors.js";
import { envKekProvider, fileKekProvider } from "./file-provider.js";
import type { KekProvider } from "./kek.js";
import { Pkcs11KekProvider } from "./pkcs11-provider.js";
import { Pkcs11Token, type Pkcs11Config } from "./pkcs11-token.js";

/** The settings that pick and reach a KEK provider (a slice of MoatConfig). */
export type KeysConfig = Pick<MoatConfig, "dataDir" | "masterKey" | "keys.provider" | "keys.pkcs11Module" | "keys.pkcs11TokenLabel" | "keys.pkcs11Slot" | "keys.pkcs11PinFile" | "keys.pkcs11Pin">;

/** Reads a PIN file: it must not be readable by group or others (like the KEK file). */
export function readPinFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    throw new MoatError("PKCS11_PIN_MISSING", `the PKCS#11 PIN file ${path} cannot be read`, { cause: error });
  }
  try {
    const mode = fstatSync(fd).mode & 0o777;
    if (mode & 0o077) throw new MoatError("PKCS11_PIN_MISSING", `the PKCS#11 PIN file ${path} has mode ${mode.toString(8)}; it must be 600 (chmod 600 ${path})`);
    return readFileSync(fd, "utf8").replace(/\r?\n$/, "");
  } finally {
    closeSync(fd);
  }
}

/** The PKCS#11 connection settings, with the PIN from `keys.pkcs11PinFile` or MOAT_KEYS_PKCS11_PIN (never a flag). */
export function pkcs11ConfigFrom(config: KeysConfig): Pkcs11Config {
  const modulePath = config["keys.pkcs11Module"];
  if (!modulePath) throw new MoatError("CONFIG_INVALID", "keys.provider is pkcs11 but keys.pkcs11Module (MOAT_KEYS_PKCS11_MODULE) is not set");
  const pinFile = config["keys.pkcs11PinFile"];
  const pinEnv = config["keys.pkcs11Pin"];
  if (!pinFile && !pinEnv) throw new MoatError("PKCS11_PIN_MISSING", "set keys.pkcs11PinFile (a mode-600 file) or MOAT_KEYS_PKCS11_PIN; a PIN is never taken from a flag");
  return {
    modulePath,
    tokenLabel: config["keys.pkcs11TokenLabel"],
    slot: config["keys.pkcs11Slot"],
    pin: () => (pinFile ? readPinFile(pinFile) : pinEnv!),
  };
}

/**
 * The configured KEK provider: `pkcs11` (a token), `env` or `file` (default; MOAT_MASTER_KEY also
 * selects env). With `create`, a PKCS#11 token without a Moat KEK gets version 1 generated in it.
 */
export function kekProviderFromConfig(config: KeysConfig, options: { create?: boolean } = {}): KekProvider {
  const kind = config["keys.provider"];
  if (kind === "pkcs11") {
    const token = Pkcs11Token.open(pkcs11ConfigFrom(config));
    try {
      return Pkcs11KekProvider.open(token, options);
    } catch (error) {
      token.close();
      throw error;
    }
  }
  if (kind === "env" || config.masterKey) {
    if (!config.masterKey) throw new MoatError("KEK_MISSING", "keys.provider is env but MOAT_MASTER_KEY is not set");
    return envKekProvider(config.masterKey);
  }
  return fileKekProvider(config.dataDir);
}
