/**
 * A Mosquitto 2 instance of the bench's own (never the system one on 1883), configured like Moat's
 * MQTT listener: TLS 1.2+ with Moat's cipher list (src/crypto/tls-policy.ts), client certificates
 * required and verified against the given chain, the certificate's CN as user name and client id, a
 * static acl_file equivalent to the bench's policy, no anonymous access, no persistence, and only
 * errors logged (Moat runs with its log level at error/silent in the same benches).
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { TLS_CIPHERS } from "../../src/crypto/index.js";
import { spawnWithFdLimit } from "./generator.js";
import { freePort } from "../../src/lib/free-port.js";

export const MOSQUITTO_BIN = "/usr/sbin/mosquitto";

/** TLS 1.3 suite names go to `ciphers_tls1.3`, the rest to `ciphers` (OpenSSL keeps the two apart). */
export function mosquittoCipherLines(): string[] {
  const all = TLS_CIPHERS.split(":");
  return [`ciphers ${all.filter((c) => !c.startsWith("TLS_")).join(":")}`, `ciphers_tls1.3 ${all.filter((c) => c.startsWith("TLS_")).join(":")}`];
}

/**
 * The ACL equivalent to Moat's built-in device role (own telemetry, events and status written; own
 * commands and OTA offers read) plus the benches' collector rule (everyone's telemetry read).
 */
export const BENCH_ACL = [
  "pattern write devices/%u/telemetry/#",
  "pattern write devices/%u/events/#",
  "pattern write devices/%u/status",
  "pattern read devices/%u/commands/#",
  "pattern read devices/%u/ota",
  "pattern read devices/+/telemetry/#",
  "",
].join("\n");

export { freePort };

/** Resolves once something accepts TCP connections on the port. */
export async function waitForPort(port: number, isAlive: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error(`${what} exited before listening on ${port}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: "127.0.0.1", port }, () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not listen on ${port} within ${timeoutMs} ms`);
}

/** uid/gid of the account mosquitto drops to when started as root (its key files must be readable by it). */
function mosquittoAccount(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("mosquitto:"));
  if (!line) return null;
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

export interface MosquittoInstance {
  pid: number;
  port: number;
  stderr(): string;
  stop(): Promise<void>;
}

export interface MosquittoTls {
  /** CA chain that client certificates are verified against. */
  chainPem: string;
  /** Server certificate followed by its issuing CA. */
  serverCertPem: string;
  serverKeyPem: string;
}

/** Writes a file into the instance's directory, readable by the mosquitto account; returns its path. */
export type ConfFileWriter = (name: string, text: string) => string;

/**
 * Starts Mosquitto in `dir` (created, private) on a free loopback port with the configuration that
 * `render` returns for that port (it writes the files it names with `file`).
 */
export async function startMosquittoWith(dir: string, render: (file: ConfFileWriter, port: number, dir: string) => string[]): Promise<MosquittoInstance> {
  if (!existsSync(MOSQUITTO_BIN)) throw new Error(`${MOSQUITTO_BIN} is missing: apt-get install -y mosquitto`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const account = mosquittoAccount();
  if (account) {
    // Traversable (not listable) parents for the mosquitto account; the directory itself is private to it.
    for (let parent = join(dir, ".."); parent.length > 1 && parent !== "/tmp" && parent !== "/dev/shm"; parent = join(parent, "..")) chmodSync(parent, 0o711);
    chownSync(dir, account.uid, account.gid);
  }
  const file: ConfFileWriter = (name, text) => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    if (account) chownSync(path, account.uid, account.gid);
    return path;
  };
  const port = await freePort();
  const conf = file("mosquitto.conf", [...render(file, port, dir), ""].join("\n"));
  const child = spawnWithFdLimit(MOSQUITTO_BIN, ["-c", conf], { stderr: "pipe" });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  await waitForPort(port, () => child.exitCode === null, `mosquitto (${stderr})`);
  return {
    pid: child.pid!,
    port,
    stderr: () => stderr,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Starts Mosquitto in `dir` with the bench configuration (see the top of this file). */
export function startMosquitto(dir: string, tls: MosquittoTls, options: { acl?: string } = {}): Promise<MosquittoInstance> {
  return startMosquittoWith(dir, (file, port) => [
    "per_listener_settings false",
    "persistence false",
    "log_dest stderr",
    "log_type error",
    "allow_anonymous false",
    `acl_file ${file("mosquitto.acl", options.acl ?? BENCH_ACL)}`,
    "max_connections -1",
    `listener ${port} 127.0.0.1`,
    `cafile ${file("chain.pem", tls.chainPem)}`,
    `certfile ${file("server.pem", tls.serverCertPem)}`,
    `keyfile ${file("server.key", tls.serverKeyPem)}`,
    "require_certificate true",
    "use_identity_as_username true",
    "use_username_as_clientid true",
    "tls_version tlsv1.2",
    ...mosquittoCipherLines(),
  ]);
}
