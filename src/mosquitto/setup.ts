/**
 * `moat mosquitto setup`: the directory Mosquitto runs from when it is Moat's data plane. It holds the
 * Mosquitto configuration, the dynamic-security state file and, while `moat serve` runs, the CA bundle,
 * the CRL, the administrative unix socket and the runtime directory with the listener's key. The admin
 * password lives sealed in Moat's store, never in the directory (the state file holds only its PBKDF2 hash).
 */
import { pbkdf2Sync, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { MoatError } from "../errors.js";
import { writeFileAtomicSync } from "../lib/atomic-file.js";
import { renderMosquittoConf } from "./conf.js";
import { ADMIN_USERNAME, adminRole, defaultAcl } from "./dynsec-state.js";
import type { MosquittoSecrets } from "./secrets.js";

/** The marker that says this directory was made by `moat mosquitto setup` (and what it was made with). */
export const MARKER_FILE = "moat-mosquitto.json";
const FORMAT = 1;

/** What setup recorded; `moat serve` reads it back. */
export interface MosquittoSetup {
  format: number;
  /** Absolute path of the directory. */
  dir: string;
  host: string;
  port: number;
  /** The dynamic-security plugin Mosquitto loads. */
  plugin: string;
  createdAt: string;
}

/** Where each file of a set-up directory lives. */
export function mosquittoPaths(dir: string) {
  return {
    marker: join(dir, MARKER_FILE),
    conf: join(dir, "mosquitto.conf"),
    dynsec: join(dir, "dynsec.json"),
    caFile: join(dir, "ca.pem"),
    crlFile: join(dir, "crl.pem"),
    socket: join(dir, "admin.sock"),
    /** Created by `moat serve` at start, removed on exit: the listener's certificate and key. */
    runDir: join(dir, "run"),
    certFile: join(dir, "run", "server.crt"),
    keyFile: join(dir, "run", "server.key"),
  };
}

/** Candidate locations of the plugin shipped by the distribution's package. */
const PLUGIN_CANDIDATES = [
  "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
  "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
  "/usr/lib/arm-linux-gnueabihf/mosquitto_dynamic_security.so",
  "/usr/lib/mosquitto_dynamic_security.so",
  "/usr/lib64/mosquitto_dynamic_security.so",
  "/usr/local/lib/mosquitto_dynamic_security.so",
];

export function findDynsecPlugin(given?: string): string {
  if (given !== undefined) {
    if (!existsSync(given)) throw new MoatError("MOSQUITTO_NOT_FOUND", `the dynamic-security plugin ${given} does not exist`, { detail: { plugin: given } });
    return resolve(given);
  }
  const found = PLUGIN_CANDIDATES.find((path) => existsSync(path));
  if (!found)
    throw new MoatError("MOSQUITTO_NOT_FOUND", `Mosquitto's dynamic-security plugin was not found (looked in ${PLUGIN_CANDIDATES.join(", ")}); install the mosquitto package or pass --plugin PATH`);
  return found;
}

/** The name the admin password is stored under: one per directory. */
export function adminSecretName(dir: string): string {
  return `mosquitto.admin:${dir}`;
}

export interface SetupOptions {
  dir: string;
  port: number;
  host: string;
  plugin?: string;
  secrets: MosquittoSecrets;
  now?: Date;
}

/**
 * Writes the configuration, a fresh dynamic-security state with Moat's admin account and the marker.
 * A directory that exists, is not empty and has no marker is refused: it was not made here.
 */
export async function setupMosquitto(options: SetupOptions): Promise<MosquittoSetup> {
  const dir = resolveDir(options.dir);
  const paths = mosquittoPaths(dir);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new MoatError("MOSQUITTO_DIR_NOT_OURS", `${dir} exists and is not a directory; nothing was written`, { detail: { dir } });
    if (readdirSync(dir).length > 0 && !existsSync(paths.marker))
      throw new MoatError("MOSQUITTO_DIR_NOT_OURS", `${dir} is not empty and was not created by moat mosquitto setup; nothing was written (choose a new or empty directory)`, {
        detail: { dir },
      });
    if (existsSync(paths.socket)) throw new MoatError("MOSQUITTO_DIR_NOT_OURS", `${dir} is in use by a running Mosquitto (admin.sock exists); stop moat serve first`, { detail: { dir } });
  }
  if (!Number.isInteger(options.port) || options.port < 1 || options.port > 65535)
    throw new MoatError("CONFIG_INVALID", `--port must be 1..65535 (Mosquitto cannot pick a free port itself), got ${options.port}`);
  const plugin = findDynsecPlugin(options.plugin);
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const setup: MosquittoSetup = { format: FORMAT, dir, host: options.host, port: options.port, plugin, createdAt: (options.now ?? new Date()).toISOString() };
  const password = randomBytes(32).toString("base64url");
  // Sealed in the store first: a state file whose password nobody holds would lock Moat out.
  await options.secrets.put(adminSecretName(dir), Buffer.from(password));
  writeFileAtomicSync(paths.dynsec, JSON.stringify(initialState(password), null, 2) + "\n", { mode: 0o600 });
  writeFileAtomicSync(paths.conf, renderMosquittoConf(setup, paths), { mode: 0o644 });
  writeFileAtomicSync(paths.marker, JSON.stringify(setup, null, 2) + "\n", { mode: 0o644 });
  return setup;
}

/** Reads what setup recorded; MOSQUITTO_NOT_SET_UP when the directory was not made by it. */
export function readMosquittoSetup(dirOption: string | null): MosquittoSetup {
  if (!dirOption) throw new MoatError("MOSQUITTO_NOT_SET_UP", "broker.mode is mosquitto but broker.mosquitto.dir is not set (MOAT_BROKER_MOSQUITTO_DIR); run moat mosquitto setup --dir DIR");
  const dir = resolveDir(dirOption);
  let raw: string;
  try {
    raw = readFileSync(mosquittoPaths(dir).marker, "utf8");
  } catch {
    throw new MoatError("MOSQUITTO_NOT_SET_UP", `${dir} was not set up by moat mosquitto setup (no ${MARKER_FILE}); run moat mosquitto setup --dir ${dir}`, { detail: { dir } });
  }
  let parsed: Partial<MosquittoSetup>;
  try {
    parsed = JSON.parse(raw) as Partial<MosquittoSetup>;
  } catch {
    throw new MoatError("MOSQUITTO_NOT_SET_UP", `${mosquittoPaths(dir).marker} is not valid JSON; run moat mosquitto setup again`, { detail: { dir } });
  }
  if (parsed.format !== FORMAT || typeof parsed.port !== "number" || typeof parsed.host !== "string" || typeof parsed.plugin !== "string")
    throw new MoatError("MOSQUITTO_NOT_SET_UP", `${mosquittoPaths(dir).marker} was written by another version; run moat mosquitto setup again`, { detail: { dir } });
  return { format: FORMAT, dir, host: parsed.host, port: parsed.port, plugin: parsed.plugin, createdAt: String(parsed.createdAt ?? "") };
}

function resolveDir(dir: string): string {
  return isAbsolute(dir) ? dir : resolve(dir);
}

/** Mosquitto's password hash (PBKDF2-HMAC-SHA512, 64 bytes), as its dynamic-security plugin stores it. */
export function dynsecPasswordHash(password: string, iterations = 100_000): { password: string; salt: string; iterations: number } {
  const salt = randomBytes(12);
  return { password: pbkdf2Sync(password, salt, iterations, 64, "sha512").toString("base64"), salt: salt.toString("base64"), iterations };
}

/** A state file with only Moat's admin account and deny-by-default access. */
function initialState(password: string) {
  return {
    defaultACLAccess: defaultAcl(),
    clients: [{ username: ADMIN_USERNAME, textname: "Moat control plane", roles: [{ rolename: adminRole().rolename }], ...dynsecPasswordHash(password) }],
    groups: [],
    roles: [adminRole()],
  };
}
