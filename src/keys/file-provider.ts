import { randomBytes } from "node:crypto";
import { closeSync, existsSync, fstatSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { MoatError } from "../errors.js";
import { singleKekProvider, softwareKek, type KekProvider } from "./kek.js";

export const KEK_FILE = "kek.key";

function decodeKek(text: string, source: string): Buffer {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) throw new MoatError("KEK_INVALID", `the KEK in ${source} is not base64`);
  return Buffer.from(trimmed, "base64");
}

/**
 * Creates the KEK file (32 random bytes, base64, mode 0600). Refuses to overwrite an existing one:
 * losing the KEK makes every secret in the store unreadable.
 */
export function createKekFile(dataDir: string): string {
  const path = join(dataDir, KEK_FILE);
  // "wx" fails if the file exists, so a second init can never replace the key.
  const fd = openSync(path, "wx", 0o600);
  try {
    writeSync(fd, randomBytes(32).toString("base64") + "\n");
  } finally {
    closeSync(fd);
  }
  return path;
}

/** The KEK file in the data dir. Missing → KEK_MISSING; readable by others → KEK_INVALID. */
export function fileKekProvider(dataDir: string): KekProvider {
  const path = join(dataDir, KEK_FILE);
  if (!existsSync(path)) throw new MoatError("KEK_MISSING", `the KEK file ${path} is missing (set MOAT_MASTER_KEY if the KEK is kept elsewhere); nothing was decrypted`);
  const fd = openSync(path, "r");
  let text: string;
  try {
    const mode = fstatSync(fd).mode & 0o777;
    if (mode & 0o077) throw new MoatError("KEK_INVALID", `the KEK file ${path} has mode ${mode.toString(8)}; it must be 600 (chmod 600 ${path})`);
    text = readFileSync(fd, "utf8");
  } finally {
    closeSync(fd);
  }
  return singleKekProvider("file", softwareKek(decodeKek(text, path), "file"));
}

/** The KEK from MOAT_MASTER_KEY (base64 of 32 bytes). */
export function envKekProvider(masterKey: string): KekProvider {
  return singleKekProvider("env", softwareKek(decodeKek(masterKey, "MOAT_MASTER_KEY"), "env"));
}
