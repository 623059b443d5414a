/**
 * The MQTT broker against Mosquitto 2.0, side by side in one run, both with mTLS (TLS 1.2+, client
 * certificates from the same CA) and topic ACLs, driven by the same load tool in its own process:
 * - mTLS connections per second (TLS handshake + CONNECT/CONNACK + DISCONNECT);
 * - QoS 0 and QoS 1 messages per second, publishers and subscribers in pairs, 256-byte payloads;
 * - memory per idle mTLS connection (RSS growth of the broker process);
 * - revocation-to-disconnect latency p50/p99 (Moat only: Mosquitto cannot drop live sessions on a
 *   revocation; it reads CRLs at start-up).
 *
 * Processes: this file is the orchestrator, and is also forked as the Moat broker node and as the load
 * tool (MOAT_BROKER_BENCH_CHILD=moat|load), so neither shares an event loop with the other.
 * Mosquitto is started here on a free loopback port with its own config (never the system one).
 */
import "reflect-metadata";
import { fork, spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import type { BenchContext, BenchRow } from "./harness.js";

const CHILD = process.env.MOAT_BROKER_BENCH_CHILD;
const MOSQUITTO = "/usr/sbin/mosquitto";
const PAYLOAD_BYTES = 256;

interface BenchDevice {
  id: string;
  certPem: string;
  serial: string;
}

interface BenchPki {
  chainPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  issuingPem: string;
  deviceKeyPem: string;
  devices: BenchDevice[];
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) : 0;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** One certificate hierarchy for both brokers, made with Moat's own PKI (fast DER template issuance). */
async function makePki(count: number): Promise<BenchPki> {
  const pki = await import("../src/pki/index.js");
  const trustDomain = "bench.moat";
  const { root, issuing } = await pki.createCaHierarchy({ keyType: "ec-p256", trustDomain });
  const server = await pki.issueServerCertificate({ issuing, hostnames: ["127.0.0.1", "localhost"], trustDomain });
  const template = new pki.DeviceCertificateTemplate(pki.loadIssuer(issuing), trustDomain, pki.pkiUrls("http://127.0.0.1:8080"));
  // One device key for all certificates: key generation is not what is measured.
  const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spkiDer = key.publicKey.export({ format: "der", type: "spki" });
  const devices: BenchDevice[] = [];
  for (let i = 0; i < count; i++) {
    const serial = randomBytes(16);
    serial[0] = (serial[0]! & 0x7f) | 0x10;
    const built = template.issue({ deviceId: `dev-${i}`, spkiDer, serial, days: 30 });
    devices.push({ id: `dev-${i}`, certPem: pki.toPem(built.der, "CERTIFICATE"), serial: serial.toString("hex") });
  }
  const { createPrivateKey } = await import("node:crypto");
  return {
    chainPem: issuing.certificatePem.trimEnd() + "\n" + root.certificatePem.trimEnd() + "\n",
    serverCertPem: server.certificatePem.trimEnd() + "\n" + issuing.certificatePem.trimEnd() + "\n",
    serverKeyPem: createPrivateKey({ key: server.privateKeyPkcs8Der, format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }).toString(),
    issuingPem: issuing.certificatePem,
    deviceKeyPem: key.privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    devices,
  };
}

// ---------------------------------------------------------------------------------------------
// Child process plumbing: request/response over the IPC channel

type Message = { id: number; op: string; [key: string]: unknown };

function serve(handlers: Record<string, (msg: Message) => Promise<unknown>>): void {
  process.on("message", (msg: Message) => {
    const handler = handlers[msg.op];
    if (!handler) return process.send!({ id: msg.id, error: `unknown op ${msg.op}` });
    handler(msg).then(
      (result) => process.send!({ id: msg.id, result }),
      (err: Error) => process.send!({ id: msg.id, error: err.stack ?? String(err) }),
    );
  });
  process.send!({ id: 0, result: "ready" });
}

class ChildHandle {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  readonly ready: Promise<void>;

  constructor(readonly child: ChildProcess) {
    let readyResolve!: () => void;
    this.ready = new Promise((resolve) => (readyResolve = resolve));
    child.on("message", (msg: { id: number; result?: unknown; error?: string }) => {
      if (msg.id === 0) return readyResolve();
      const waiter = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.error) waiter?.reject(new Error(msg.error));
      else waiter?.resolve(msg.result);
    });
  }

  request<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ id, op, ...args });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    this.child.kill("SIGTERM");
    await exited;
  }
}

function forkChild(role: "moat" | "load"): ChildHandle {
  const child = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, MOAT_BROKER_BENCH_CHILD: role },
    // MOAT_BENCH_CPU_PROF=<dir> writes a V8 CPU profile of the broker node there (for tuning).
    execArgv: ["--import", "tsx", "--expose-gc", "--max-old-space-size=2048", ...(role === "moat" && process.env.MOAT_BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.MOAT_BENCH_CPU_PROF}`] : [])],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  return new ChildHandle(child);
}

// ---------------------------------------------------------------------------------------------
// The Moat broker node (child)

async function runMoatNode(): Promise<void> {
  const { startBroker, InMemoryDeviceDirectory } = await import("../src/broker/index.js");
  const { isDeviceId } = await import("../src/identity/index.js");
  const { BUILTIN_ROLES, compilePolicy } = await import("../src/policy/index.js");
  const mqtt = (await import("mqtt")).default;
  const listeners = new Set<(change: any) => void>();
  let seq = 0;
  const feed = {
    subscribe: (l: (change: any) => void) => (listeners.add(l), () => listeners.delete(l)),
    latestSeq: async () => seq,
  };
  const push = (kind: string, subject: string, data: Record<string, unknown>) => {
    const change = { seq: ++seq, kind, subject, data, createdAt: new Date().toISOString() };
    for (const l of listeners) l(change);
  };
  let broker: Awaited<ReturnType<typeof startBroker>> | null = null;
  let pki: BenchPki;

  serve({
    start: async (msg) => {
      pki = JSON.parse(readFileSync(String(msg.pkiFile), "utf8")) as BenchPki;
      const directory = new InMemoryDeviceDirectory(isDeviceId);
      for (const d of pki.devices) directory.put({ id: d.id, certSerials: [d.serial] });
      // Publishers keep the built-in device role; subscribers also collect other devices' telemetry.
      const collector = {
        name: "collector",
        rules: [
          { effect: "allow" as const, action: "subscribe", resource: "devices/+/telemetry/#" },
          { effect: "allow" as const, action: "receive", resource: "devices/+/telemetry/#" },
        ],
      };
      const engine = compilePolicy({
        roles: [...BUILTIN_ROLES, collector],
        assignments: pki.devices.flatMap((d) => [
          { role: "device", kind: "device" as const, target: d.id },
          { role: "collector", kind: "device" as const, target: d.id },
        ]),
      });
      broker = await startBroker(
        {
          directory,
          revocationSource: directory,
          decider: engine,
          events: { emit: async () => undefined },
          feed,
          tls: { load: async () => ({ certPem: pki.serverCertPem, keyPem: pki.serverKeyPem, caPems: [pki.chainPem], issuingCaPems: [pki.issuingPem] }) },
        },
        // The rate limit stays on but is set above what the bench drives, so it measures the broker.
        { host: "127.0.0.1", mqttPort: Number(msg.port), messagesPerSecond: 1_000_000, rateBurst: 1_000_000, authFailureLimit: 1000 },
      );
      return { pid: process.pid };
    },
    rss: async () => {
      (globalThis as { gc?: () => void }).gc?.();
      await new Promise((r) => setTimeout(r, 200));
      return rssKiB(process.pid);
    },
    revocation: async (msg) => {
      const count = Number(msg.count);
      const first = Number(msg.offset);
      const samples: number[] = [];
      for (let i = first; i < first + count; i++) {
        const device = pki.devices[i]!;
        const client = await mqtt.connectAsync(`mqtts://127.0.0.1:${broker!.ports.tls}`, {
          ca: pki.chainPem,
          cert: device.certPem,
          key: pki.deviceKeyPem,
          clientId: device.id,
          protocolVersion: 4,
          reconnectPeriod: 0,
        });
        await new Promise((r) => setTimeout(r, 20));
        const closedAt = new Promise<number>((resolve) => client.once("close", () => resolve(performance.now())));
        const t0 = performance.now();
        push("cert.revoked", device.serial, { deviceId: device.id, serial: device.serial });
        samples.push((await closedAt) - t0);
        client.end(true);
      }
      return samples;
    },
    /**
     * The path of a revocation made by another process (`moat cert revoke` on the same SQLite data
     * dir): one Store writes the change-feed row, the broker learns it from another Store's polling.
     */
    "revocation-store": async (msg) => {
      const { Store } = await import("../src/store/index.js");
      const reader = await Store.open({ dataDir: String(msg.dataDir), feedPollMs: Number(msg.pollMs) });
      await reader.migrate();
      const writer = await Store.open({ dataDir: String(msg.dataDir), feedPollMs: 60_000 });
      // Store sequence numbers are their own; keep them apart from the in-process feed's.
      const stopBridge = reader.subscribe((change) => {
        for (const l of listeners) l({ ...change, seq: change.seq + 1_000_000_000 });
      });
      const samples: number[] = [];
      try {
        for (let i = Number(msg.offset); i < Number(msg.offset) + Number(msg.count); i++) {
          const device = pki.devices[i]!;
          const client = await mqtt.connectAsync(`mqtts://127.0.0.1:${broker!.ports.tls}`, { ca: pki.chainPem, cert: device.certPem, key: pki.deviceKeyPem, clientId: device.id, protocolVersion: 4, reconnectPeriod: 0 });
          // Spread the writes over the polling interval, as independent operators would.
          await new Promise((r) => setTimeout(r, 20 + Math.random() * Number(msg.pollMs)));
          const closedAt = new Promise<number>((resolve) => client.once("close", () => resolve(performance.now())));
          const t0 = performance.now();
          await writer.transaction((tx) => tx.changes.append({ kind: "cert.revoked", subject: device.serial, data: { serial: device.serial, deviceId: device.id, issuer: "01", reason: "keyCompromise", revokedAt: new Date().toISOString() } }));
          samples.push((await closedAt) - t0);
          client.end(true);
        }
      } finally {
        stopBridge();
        await writer.close();
        await reader.close();
      }
      return samples;
    },
    stop: async () => {
      await broker?.close();
      return true;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// The load tool (child): raw TLS + MQTT packets for connections, MQTT.js for message flows

async function runLoadTool(): Promise<void> {
  const mqttPacket = (await import("mqtt-packet")).default;
  const mqtt = (await import("mqtt")).default;
  let pki: BenchPki;
  const idle: TLSSocket[] = [];

  /** TLS handshake with a client certificate, CONNECT, wait for CONNACK; resolves the open socket. */
  function mqttConnect(port: number, device: BenchDevice): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: "127.0.0.1", port, ca: pki.chainPem, cert: device.certPem, key: pki.deviceKeyPem, servername: "localhost" });
      const fail = (err: Error) => (socket.destroy(), reject(err));
      socket.once("error", fail);
      socket.once("secureConnect", () => {
        socket.write(mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, clientId: device.id, keepalive: 0 } as never));
      });
      socket.once("data", (data: Buffer) => {
        socket.off("error", fail);
        socket.on("error", () => undefined);
        if (data[0] === 0x20 && data[3] === 0) resolve(socket);
        else fail(new Error(`CONNACK refused: ${data.toString("hex")}`));
      });
    });
  }

  async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<number> {
    let failed = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < items.length) {
          const item = items[next++]!;
          await work(item).catch(() => void failed++);
        }
      }),
    );
    return failed;
  }

  serve({
    init: async (msg) => {
      pki = JSON.parse(readFileSync(String(msg.pkiFile), "utf8")) as BenchPki;
      return true;
    },
    "connect-rate": async (msg) => {
      const devices = pki.devices.slice(0, Number(msg.count));
      const t0 = performance.now();
      const failed = await pool(devices, Number(msg.concurrency), async (device) => {
        const socket = await mqttConnect(Number(msg.port), device);
        socket.end(mqttPacket.generate({ cmd: "disconnect" } as never));
      });
      return { seconds: (performance.now() - t0) / 1000, ok: devices.length - failed, failed };
    },
    "idle-open": async (msg) => {
      const devices = pki.devices.slice(0, Number(msg.count));
      const failed = await pool(devices, 50, async (device) => {
        idle.push(await mqttConnect(Number(msg.port), device));
      });
      return { open: idle.length, failed };
    },
    "idle-close": async () => {
      for (const socket of idle.splice(0)) socket.destroy();
      await new Promise((r) => setTimeout(r, 500));
      return true;
    },
    throughput: async (msg) => {
      const port = Number(msg.port);
      const pairs = Number(msg.pairs);
      const qos = Number(msg.qos) as 0 | 1;
      const seconds = Number(msg.seconds);
      const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
      const options = (d: BenchDevice) => ({ ca: pki.chainPem, cert: d.certPem, key: pki.deviceKeyPem, clientId: d.id, protocolVersion: 4 as const, reconnectPeriod: 0 });
      const pubs = pki.devices.slice(0, pairs);
      const subs = pki.devices.slice(pairs, 2 * pairs);
      let received = 0;
      let counting = false;
      const subscribers = await Promise.all(subs.map((d) => mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, options(d))));
      await Promise.all(
        subscribers.map(async (client, i) => {
          client.on("message", () => {
            if (counting) received++;
          });
          await client.subscribeAsync(`devices/${pubs[i]!.id}/telemetry/#`, { qos });
        }),
      );
      const publishers = await Promise.all(pubs.map((d) => mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, options(d))));
      let running = true;
      // Each publisher keeps a window of 10 messages in flight (QoS 1: until PUBACK; QoS 0: until written).
      const loops = publishers.map(async (client, i) => {
        const topic = `devices/${pubs[i]!.id}/telemetry/bench`;
        while (running) await Promise.all(Array.from({ length: 10 }, () => client.publishAsync(topic, payload, { qos }).catch(() => undefined)));
      });
      await new Promise((r) => setTimeout(r, 1000));
      counting = true;
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, seconds * 1000));
      counting = false;
      const elapsed = (performance.now() - t0) / 1000;
      running = false;
      await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 5000))]);
      await Promise.all([...publishers, ...subscribers].map((c) => c.endAsync(true).catch(() => undefined)));
      return { received, seconds: elapsed };
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Mosquitto, started by the bench with an equivalent mTLS + ACL configuration

/** uid/gid of the account mosquitto drops to when started as root (its key files must be readable by it). */
function mosquittoAccount(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("mosquitto:"));
  if (!line) return null;
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

async function startMosquitto(baseDir: string, pki: BenchPki, port: number): Promise<{ pid: number; stop(): Promise<void> }> {
  const dir = join(baseDir, "mosquitto");
  mkdirSync(dir, { mode: 0o700 });
  const account = mosquittoAccount();
  if (account) {
    // Traversable (not listable) for the mosquitto account; its own directory stays private to it.
    chmodSync(baseDir, 0o711);
    chownSync(dir, account.uid, account.gid);
  }
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text, { mode: 0o600 });
    if (account) chownSync(path, account.uid, account.gid);
    return path;
  };
  const acl = file("mosquitto.acl", ["pattern write devices/%u/telemetry/#", "pattern write devices/%u/events/#", "pattern read devices/%u/commands/#", "pattern read devices/+/telemetry/#", ""].join("\n"));
  const conf = file(
    "mosquitto.conf",
    [
      "per_listener_settings false",
      "persistence false",
      "log_dest stderr",
      "log_type error",
      "allow_anonymous false",
      `acl_file ${acl}`,
      `listener ${port} 127.0.0.1`,
      `cafile ${file("chain.pem", pki.chainPem)}`,
      `certfile ${file("server.pem", pki.serverCertPem)}`,
      `keyfile ${file("server.key", pki.serverKeyPem)}`,
      "require_certificate true",
      "use_identity_as_username true",
      "tls_version tlsv1.2",
      "max_connections -1",
      "",
    ].join("\n"),
  );
  const child = spawn(MOSQUITTO, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  for (let attempt = 0; attempt < 50; attempt++) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited: ${stderr}`);
    const up = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once("error", () => resolve(true));
      probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(false)));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      await exited;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The orchestrator

export default async function brokerBench(ctx: BenchContext): Promise<BenchRow[]> {
  const { existsSync } = await import("node:fs");
  if (!existsSync(MOSQUITTO)) throw new Error(`${MOSQUITTO} is missing: apt-get install -y mosquitto`);
  const sizes = ctx.quick
    ? { connects: 200, idle: 500, pairs: 20, seconds: 3, revocations: 20, storeRevocations: 10 }
    : { connects: 500, idle: 5000, pairs: 100, seconds: 4, revocations: 100, storeRevocations: 40 };
  const deviceCount = Math.max(sizes.connects, sizes.idle, 2 * sizes.pairs) + sizes.revocations + sizes.storeRevocations;
  ctx.log(`issuing ${deviceCount} device certificates`);
  const pki = await makePki(deviceCount);
  const pkiFile = join(ctx.tmpDir, "pki.json");
  writeFileSync(pkiFile, JSON.stringify(pki), { mode: 0o600 });

  const moatPort = await freePort();
  const mosquittoPort = await freePort();
  const moat = forkChild("moat");
  const load = forkChild("load");
  let mosquitto: Awaited<ReturnType<typeof startMosquitto>> | null = null;
  try {
    await Promise.all([moat.ready, load.ready]);
    await moat.request<{ pid: number }>("start", { pkiFile, port: moatPort });
    await load.request("init", { pkiFile });
    mosquitto = await startMosquitto(ctx.tmpDir, pki, mosquittoPort);
    const targets = [
      { name: "moat", port: moatPort, rss: () => moat.request<number>("rss") },
      { name: "mosquitto", port: mosquittoPort, rss: async () => rssKiB(mosquitto!.pid) },
    ] as const;
    const result: Record<string, Record<string, number>> = { moat: {}, mosquitto: {} };

    for (const target of targets) {
      ctx.log(`${target.name}: ${sizes.connects} mTLS connects`);
      const rate = await load.request<{ seconds: number; ok: number; failed: number }>("connect-rate", { port: target.port, count: sizes.connects, concurrency: 20 });
      if (rate.failed > 0) ctx.log(`${target.name}: ${rate.failed} connects failed`);
      result[target.name]!.connects = rate.ok / rate.seconds;
    }
    for (const qos of [0, 1]) {
      for (const target of targets) {
        ctx.log(`${target.name}: QoS ${qos}, ${sizes.pairs} publishers -> ${sizes.pairs} subscribers, ${sizes.seconds} s`);
        const flow = await load.request<{ received: number; seconds: number }>("throughput", { port: target.port, pairs: sizes.pairs, qos, seconds: sizes.seconds });
        result[target.name]![`qos${qos}`] = flow.received / flow.seconds;
      }
    }
    for (const target of targets) {
      await new Promise((r) => setTimeout(r, 500));
      const before = await target.rss();
      ctx.log(`${target.name}: ${sizes.idle} idle mTLS connections`);
      const opened = await load.request<{ open: number; failed: number }>("idle-open", { port: target.port, count: sizes.idle });
      await new Promise((r) => setTimeout(r, 1000));
      const after = await target.rss();
      await load.request("idle-close");
      result[target.name]!.perConnection = ((after - before) * 1024) / Math.max(1, opened.open);
      result[target.name]!.idleOpen = opened.open;
    }
    ctx.log(`moat: revocation-to-disconnect for ${sizes.revocations} sessions`);
    const offset = deviceCount - sizes.revocations;
    const samples = (await moat.request<number[]>("revocation", { count: sizes.revocations, offset })).sort((a, b) => a - b);
    const pollMs = 100; // the default feed.pollMs
    ctx.log(`moat: revocation through the store's change feed (another process; polling every ${pollMs} ms) for ${sizes.storeRevocations} sessions`);
    const storeDir = join(ctx.tmpDir, "store");
    mkdirSync(storeDir, { mode: 0o700 });
    const viaStore = (
      await moat.request<number[]>("revocation-store", { count: sizes.storeRevocations, offset: offset - sizes.storeRevocations, dataDir: storeDir, pollMs })
    ).sort((a, b) => a - b);

    const m = result.moat!;
    const q = result.mosquitto!;
    const mosquittoName = "Mosquitto 2.0 (same mTLS, ACL, load tool)";
    return [
      { measure: "mTLS connections per second (handshake + CONNECT/CONNACK)", moat: m.connects!, reference: q.connects!, referenceName: mosquittoName, unit: "conn/s", higherIsBetter: true, goal: ">= 1.0x", note: `${sizes.connects} connects, 20 concurrent; Moat checks chain, issuer, revocation, device status, client id = CN` },
      { measure: `QoS 0 messages per second (${sizes.pairs} pub -> ${sizes.pairs} sub, ${PAYLOAD_BYTES} B)`, moat: m.qos0!, reference: q.qos0!, referenceName: mosquittoName, unit: "msg/s", higherIsBetter: true, goal: ">= 1.0x", note: "delivered to subscribers; Moat ACL on publish and on every delivery" },
      { measure: `QoS 1 messages per second (${sizes.pairs} pub -> ${sizes.pairs} sub, ${PAYLOAD_BYTES} B)`, moat: m.qos1!, reference: q.qos1!, referenceName: mosquittoName, unit: "msg/s", higherIsBetter: true, goal: ">= 1.0x", note: "window of 10 unacknowledged publishes per publisher" },
      { measure: `memory per idle mTLS connection (${sizes.idle} connections)`, moat: m.perConnection!, reference: q.perConnection!, referenceName: mosquittoName, unit: "bytes", higherIsBetter: false, note: `RSS growth / connections (Moat ${m.idleOpen}, Mosquitto ${q.idleOpen} open)` },
      { measure: "revocation-to-disconnect latency p50", moat: percentile(samples, 50), reference: null, unit: "ms", higherIsBetter: false, goal: "< 100 ms", note: "change pushed in-process (API/same node); a CLI process adds up to feed.pollMs (100 ms default). Mosquitto keeps revoked sessions until they reconnect" },
      { measure: "revocation-to-disconnect latency p99", moat: percentile(samples, 99), reference: null, unit: "ms", higherIsBetter: false, goal: "< 100 ms", note: `${samples.length} revocations, measured to the client's socket close` },
      { measure: `revocation from another process (store feed, ${pollMs} ms polling) p50`, moat: percentile(viaStore, 50), reference: null, unit: "ms", higherIsBetter: false, goal: "< 1000 ms", note: "row written by a second Store on the same SQLite file, as `moat cert revoke` does" },
      { measure: `revocation from another process (store feed, ${pollMs} ms polling) p99`, moat: percentile(viaStore, 99), reference: null, unit: "ms", higherIsBetter: false, goal: "< 1000 ms (100 ms needs feed.pollMs <= 80)", note: `${viaStore.length} revocations` },
    ];
  } finally {
    await moat.request("stop").catch(() => undefined);
    await Promise.all([moat.stop(), load.stop(), mosquitto?.stop()]);
  }
}

// A normal exit on SIGTERM, so that --cpu-prof gets written.
if (CHILD) process.on("SIGTERM", () => process.exit(0));
if (CHILD === "moat") void runMoatNode();
else if (CHILD === "load") void runLoadTool();
