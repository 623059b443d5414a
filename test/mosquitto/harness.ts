/**
 * A Moat installation with Mosquitto as its data plane, for tests: `moat mosquitto setup` and
 * `moat serve` (broker.mode = mosquitto) run as the built CLI in child processes, the installation is
 * changed in-process (same SQLite file; the serving process follows the feed), and devices get real
 * certificates from Moat's PKI.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { readFileSync } from "node:fs";
import { DynsecAdmin, adminSecretName, mosquittoPaths, sealedSecrets } from "../../src/mosquitto/index.js";
import { toPem } from "../../src/pki/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { REPO_ROOT, runCli, type CliResult } from "../helpers/cli.js";
import { hasCommand, requireCommand } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";
import { freePort } from "../../src/lib/free-port.js";

/** mosquitto, its clients and the dynamic-security plugin: present, or the suite skips loudly (fails under CI). */
export function mosquittoAvailable(): boolean {
  return requireCommand("mosquitto_pub", "mosquitto-clients") && requireCommand("mosquitto_sub", "mosquitto-clients") && (hasCommand("mosquitto") || requireCommand("/usr/sbin/mosquitto", "mosquitto"));
}

export { freePort };

export interface DeviceCert {
  id: string;
  serial: string;
  certPath: string;
  keyPath: string;
  certPem: string;
  keyPem: string;
}

export interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the event loop. */
export function run(command: string, args: string[], timeoutMs = 15_000): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

export async function waitUntil<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export class MosquittoHarness {
  readonly tmp = tempDir("moat-mosq-");
  readonly dir: string;
  readonly chainPath: string;
  port = 0;
  test!: TestApp;
  serve: ChildProcess | null = null;
  private serveLog = "";
  private readonly clients = new Set<MqttClient>();

  constructor() {
    // Mosquitto drops to its own user when started as root: it must be able to reach the directory.
    chmodSync(this.tmp.path, 0o711);
    this.dir = join(this.tmp.path, "mq");
    this.chainPath = join(this.tmp.path, "chain.pem");
  }

  get app() {
    return this.test.app;
  }

  /** A fresh installation and `moat mosquitto setup` on a free port. */
  async init(): Promise<void> {
    this.test = await createTestApp("sqlite");
    this.port = await freePort();
    const setup = await this.cli(["mosquitto", "setup", "--dir", this.dir, "--port", String(this.port), "--json"]);
    if (setup.code !== 0) throw new Error(`setup failed: ${setup.stderr}`);
    writeFileSync(this.chainPath, await this.app.ca.chainPem());
  }

  cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    return runCli([...this.test.cliArgs, ...args], { env: { MOAT_BROKER_MOSQUITTO_DIR: this.dir, ...env } });
  }

  /** `moat serve` with broker.mode = mosquitto; resolves once every device is in place. */
  async startServe(extraArgs: string[] = []): Promise<void> {
    const child = spawn(process.execPath, [`${REPO_ROOT}dist/cli/bin.js`, ...this.test.cliArgs, "serve", "--api-port", "0", "--pki-port", "0", ...extraArgs], {
      env: { ...process.env, MOAT_LOG_LEVEL: "info", MOAT_BROKER_MODE: "mosquitto", MOAT_BROKER_MOSQUITTO_DIR: this.dir, MOAT_FEED_POLL_MS: "50" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.serve = child;
    this.serveLog = "";
    child.stderr!.on("data", (d) => (this.serveLog += d));
    await new Promise<void>((resolve, reject) => {
      const onData = () => {
        if (this.serveLog.includes("devices in place")) {
          child.stderr!.off("data", onData);
          resolve();
        }
      };
      child.stderr!.on("data", onData);
      child.once("exit", (code) => reject(new Error(`moat serve exited with ${code}: ${this.serveLog.slice(-3000)}`)));
    });
  }

  log(): string {
    return this.serveLog;
  }

  /** The pid of the Mosquitto that moat serve runs now (from its "running"/"restarted" lines). */
  mosquittoPid(): number | null {
    const matches = [...this.serveLog.matchAll(/"pid":(\d+),"port":\d+,"restart":(?:true|false)/g)];
    return matches.length > 0 ? Number(matches.at(-1)![1]) : null;
  }

  async stopServe(): Promise<void> {
    const child = this.serve;
    this.serve = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    await exited;
  }

  /** A device with a fresh certificate (registered if new). */
  async device(id: string, options: { role?: string; group?: string; attributes?: Record<string, string> } = {}): Promise<DeviceCert> {
    const existing = await this.app.devices.get(id).catch(() => null);
    if (!existing) await this.app.devices.create({ id, ...options }, "test");
    const issued = await this.app.pki.certificates.issueWithGeneratedKey({ deviceId: id, actor: "test" });
    const certPath = join(this.tmp.path, `${id}-${issued.serialHex}.pem`);
    const keyPath = join(this.tmp.path, `${id}-${issued.serialHex}.key`);
    const keyPem = toPem(issued.privateKeyPkcs8Der, "PRIVATE KEY");
    writeFileSync(certPath, issued.certificatePem);
    writeFileSync(keyPath, keyPem, { mode: 0o600 });
    const cert = { id, serial: issued.serialHex, certPath, keyPath, certPem: issued.certificatePem, keyPem };
    if (this.serve) await this.inMosquitto(id);
    return cert;
  }

  /** Waits until the running Mosquitto holds the device as an enabled client with its role. */
  async inMosquitto(id: string): Promise<void> {
    const password = (await sealedSecrets(this.app.meta, this.app.envelope).get(adminSecretName(this.dir))).toString("utf8");
    const admin = await DynsecAdmin.connect(mosquittoPaths(this.dir).socket, password, { reconnect: false });
    try {
      await waitUntil(`device ${id} in Mosquitto`, async () => {
        const [answer] = await admin.run([{ command: "getClient", username: id }]);
        const client = answer?.data?.client as { disabled?: boolean; roles?: unknown[] } | undefined;
        return client && !client.disabled && (client.roles ?? []).length > 0 ? true : undefined;
      });
    } finally {
      await admin.close();
    }
  }

  /** Command-line options of mosquitto_pub/sub for a device. */
  tlsArgs(cert: DeviceCert): string[] {
    return ["-h", "127.0.0.1", "-p", String(this.port), "--cafile", this.chainPath, "--cert", cert.certPath, "--key", cert.keyPath];
  }

  /** An MQTT.js client (MQTT 5 unless asked otherwise) with the device's certificate; resolves on CONNACK. */
  async connect(cert: DeviceCert, options: Partial<IClientOptions> = {}): Promise<MqttClient> {
    const client = mqtt.connect({
      protocol: "mqtts",
      host: "127.0.0.1",
      port: this.port,
      ca: readFileSync(this.chainPath),
      cert: cert.certPem,
      key: cert.keyPem,
      protocolVersion: 5,
      clientId: cert.id,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      ...options,
    });
    this.clients.add(client);
    await new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("error", reject);
      client.once("close", () => reject(new Error("closed before CONNACK")));
    });
    client.on("error", () => undefined);
    return client;
  }

  async close(): Promise<void> {
    for (const client of this.clients) client.end(true);
    await this.stopServe();
    await this.test?.cleanup();
    this.tmp.cleanup();
  }
}

/** PUBACK reason code of a QoS 1 publish (0 or 16 = accepted, 135 = not authorized); rejects if the session ends first. */
export function publishReason(client: MqttClient, topic: string, payload = "x"): Promise<number> {
  return new Promise((resolve, reject) => {
    if (!client.connected) return reject(new Error("not connected"));
    const onClose = () => reject(new Error("the session closed before PUBACK"));
    client.once("close", onClose);
    client.publish(topic, payload, { qos: 1 }, (err, packet) => {
      client.off("close", onClose);
      if (err) {
        const code = (err as { code?: number }).code;
        if (typeof code === "number") return resolve(code);
        return reject(err);
      }
      resolve((packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0);
    });
  });
}

/** The granted QoS per filter of one SUBSCRIBE (135 = not authorized). */
export function subscribeGranted(client: MqttClient, filters: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    // On a refusal MQTT.js reports an error and leaves the requested QoS in `granted`; the SUBACK has the codes.
    client.subscribe(filters, { qos: 0 }, (err, _granted, packet) => {
      const codes = (packet as { granted?: number[] } | undefined)?.granted;
      if (codes) return resolve(codes);
      reject(err ?? new Error("no SUBACK"));
    });
  });
}
