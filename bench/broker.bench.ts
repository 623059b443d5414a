/**
 * The embedded MQTT broker against Mosquitto 2.0, side by side in one run, both with mTLS (TLS 1.2+,
 * Moat's cipher list, client certificates from the same CA, CN as client id) and topic ACLs (Moat's
 * policy engine; Mosquitto an equivalent static acl_file), both logging errors only, driven by the same
 * raw-protocol load generator (bench/load/) in two worker processes of its own:
 * - mTLS connections per second (full TLS handshake + CONNECT/CONNACK, then DISCONNECT);
 * - QoS 0 and QoS 1 deliveries per second, publishers and subscribers in pairs;
 * - memory per idle mTLS connection: RSS after a forced GC (Moat) at steady state, several samples
 *   before and after opening the connections, (after - before) / connections;
 * - revocation-to-disconnect latency p50/p99 (Moat only: Mosquitto without Moat cannot drop live
 *   sessions on a revocation; bench/mosquitto.bench.ts measures Moat-controlled Mosquitto).
 * The two brokers are measured in interleaved rounds (Moat, Mosquitto, Mosquitto, Moat, …) so a burst
 * of load from other work on the machine hits both alike; each row gives the median and the range.
 * Every rate row says how busy the generator was (its own CPU time) next to the broker's CPU.
 *
 * Processes: this file is the orchestrator, and is also forked as the Moat broker node
 * (MOAT_BROKER_BENCH_CHILD=moat), so the broker does not share an event loop with anything else.
 * Mosquitto is started here on a free loopback port with its own config (never the system one).
 */
import "reflect-metadata";
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import type { BenchContext, BenchRow } from "./harness.js";
import type { Target } from "./load/connection.js";
import { LoadGenerator, percentile, writeCredentials } from "./load/generator.js";
import { freePort, startMosquitto, waitForPort } from "./load/mosquitto.js";
import { connectRate, deliveryRate, median, range, rssSamples, sleep, sum, type BrokerUnderTest, type RateSample } from "./load/measure.js";
import { rssKiB } from "./load/proc.js";
import { credentialsOf, makeBenchPki, type BenchPki } from "./load/pki.js";

const CHILD = process.env.MOAT_BROKER_BENCH_CHILD;

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

function forkChild(role: "moat"): ChildHandle {
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

async function memoryPerConnection(load: LoadGenerator, broker: BrokerUnderTest, count: number): Promise<{ perConnection: number; spread: string; open: number }> {
  await sleep(500);
  const before = await rssSamples(broker, 3);
  // The generator's workers hold the first `count` devices (split between them); no traffic flows.
  const held = await load.all("hold", { target: broker.target, concurrency: 50, timeoutMs: 60_000, keepaliveSeconds: 0, limit: Math.ceil(count / load.size) });
  const open = sum(held.map((h) => h.open));
  await sleep(1000);
  const after = await rssSamples(broker, 3);
  await load.all("release", { port: broker.target.port });
  // Every pair of (after, before) samples gives one figure; the range shows how steady they were.
  const perPair = after.flatMap((a) => before.map((b) => ((a - b) * 1024) / Math.max(1, open)));
  return { perConnection: ((median(after) - median(before)) * 1024) / Math.max(1, open), spread: `${range(perPair.map((v) => v / 1024), 1)} KiB`, open };
}

// ---------------------------------------------------------------------------------------------
// The orchestrator

const PAYLOAD_BYTES = 256;

export default async function brokerBench(ctx: BenchContext): Promise<BenchRow[]> {
  const sizes = ctx.quick
    ? { rounds: 2, connectsPerWorker: 200, idle: 1000, pairsPerWorker: 25, inflight: 50, windowMs: 2000, revocations: 20, storeRevocations: 10 }
    : { rounds: 3, connectsPerWorker: 500, idle: 5000, pairsPerWorker: 25, inflight: 50, windowMs: 4000, revocations: 100, storeRevocations: 40 };
  const workers = 2;
  const loadDevices = Math.max(sizes.idle, workers * 2 * sizes.pairsPerWorker, workers * sizes.connectsPerWorker);
  const deviceCount = loadDevices + sizes.revocations + sizes.storeRevocations;
  ctx.log(`issuing ${deviceCount} device certificates`);
  const pki = await makeBenchPki(deviceCount);
  const pkiFile = join(ctx.tmpDir, "pki.json");
  writeFileSync(pkiFile, JSON.stringify(pki), { mode: 0o600 });
  const credentialsFile = writeCredentials(ctx.tmpDir, credentialsOf(pki));

  const moatPort = await freePort();
  const moat = forkChild("moat");
  let mosquitto: Awaited<ReturnType<typeof startMosquitto>> | null = null;
  let load: LoadGenerator | null = null;
  try {
    await moat.ready;
    await moat.request<{ pid: number }>("start", { pkiFile, port: moatPort });
    await waitForPort(moatPort, () => moat.child.exitCode === null, "the Moat broker node");
    mosquitto = await startMosquitto(join(ctx.tmpDir, "mosquitto"), pki);
    load = await LoadGenerator.start({ workers, credentialsFile, deviceCount: loadDevices });
    const target = (port: number): Target => ({ host: "127.0.0.1", port, servername: "localhost", version: 4 });
    const mq = mosquitto;
    const brokers: BrokerUnderTest[] = [
      { name: "moat", pid: moat.child.pid!, target: target(moatPort), rss: () => moat.request<number>("rss") },
      { name: "mosquitto", pid: mq.pid, target: target(mq.port), rss: async () => rssKiB(mq.pid) },
    ];
    const samples: Record<string, Record<string, RateSample[]>> = { moat: { connect: [], qos0: [], qos1: [] }, mosquitto: { connect: [], qos0: [], qos1: [] } };
    for (let round = 0; round < sizes.rounds; round++) {
      // ABBA order: neither broker always goes first.
      const order = round % 2 === 0 ? brokers : [...brokers].reverse();
      for (const broker of order) {
        ctx.log(`round ${round + 1}/${sizes.rounds} ${broker.name}: ${workers}×${sizes.connectsPerWorker} mTLS connects, QoS 0 and QoS 1 flows (${workers}×${sizes.pairsPerWorker} pairs, ${sizes.inflight} in flight each)`);
        samples[broker.name]!.connect!.push(await connectRate(load, broker, sizes.connectsPerWorker));
        for (const qos of [0, 1] as const) samples[broker.name]![`qos${qos}`]!.push(await deliveryRate(load, broker, qos, { pairs: sizes.pairsPerWorker, inflight: sizes.inflight, windowMs: sizes.windowMs, payloadBytes: PAYLOAD_BYTES }));
      }
    }
    const memory: Record<string, Awaited<ReturnType<typeof memoryPerConnection>>> = {};
    for (const broker of brokers) {
      ctx.log(`${broker.name}: ${sizes.idle} idle mTLS connections, RSS sampled 3× before and after`);
      memory[broker.name] = await memoryPerConnection(load, broker, sizes.idle);
    }
    ctx.log(`moat: revocation-to-disconnect for ${sizes.revocations} sessions`);
    const offset = deviceCount - sizes.revocations;
    const revocations = (await moat.request<number[]>("revocation", { count: sizes.revocations, offset })).sort((a, b) => a - b);
    const pollMs = 100; // the default feed.pollMs
    ctx.log(`moat: revocation through the store's change feed (another process; polling every ${pollMs} ms) for ${sizes.storeRevocations} sessions`);
    const storeDir = join(ctx.tmpDir, "store");
    mkdirSync(storeDir, { mode: 0o700 });
    const viaStore = (await moat.request<number[]>("revocation-store", { count: sizes.storeRevocations, offset: offset - sizes.storeRevocations, dataDir: storeDir, pollMs })).sort((a, b) => a - b);

    const mosquittoName = "Mosquitto 2.0 (same TLS, ACL file, log level, generator)";
    const conditions = (s: RateSample[]) =>
      `broker ${median(s.map((x) => x.brokerCores)).toFixed(2)}, generator ${median(s.map((x) => x.generatorCores)).toFixed(2)}, other processes ${median(s.map((x) => x.otherCores)).toFixed(2)} cores`;
    const rateRow = (key: "connect" | "qos0" | "qos1", measure: string, unit: string, extra: string): BenchRow => {
      const m = samples.moat![key]!;
      const q = samples.mosquitto![key]!;
      return {
        measure,
        moat: median(m.map((s) => s.rate)),
        reference: median(q.map((s) => s.rate)),
        referenceName: mosquittoName,
        unit,
        higherIsBetter: true,
        goal: ">= 0.6x",
        note: `median of ${sizes.rounds} interleaved rounds; Moat ${range(m.map((s) => s.rate))}, Mosquitto ${range(q.map((s) => s.rate))}; ratio per round ${m.map((s, i) => (s.rate / q[i]!.rate).toFixed(2)).join(", ")}; CPU (cores) with Moat: ${conditions(m)}; with Mosquitto: ${conditions(q)}; ${extra}`,
      };
    };
    const pairs = workers * sizes.pairsPerWorker;
    return [
      rateRow("connect", `mTLS connections per second (full handshake + CONNECT/CONNACK, ${workers}×20 concurrent)`, "conn/s", `${workers * sizes.connectsPerWorker} per round; negotiated ${samples.moat!.connect![0]!.note} / ${samples.mosquitto!.connect![0]!.note}; Moat checks chain, issuer, revocation, device status, client id = CN`),
      rateRow("qos0", `QoS 0 deliveries per second (${pairs} pub -> ${pairs} sub, ${PAYLOAD_BYTES} B)`, "msg/s", `${sizes.windowMs / 1000} s window after 1 s warm-up; ACL on publish and on delivery`),
      rateRow("qos1", `QoS 1 deliveries per second (${pairs} pub -> ${pairs} sub, ${PAYLOAD_BYTES} B)`, "msg/s", `${sizes.inflight} unacknowledged PUBLISHes per publisher; subscribers PUBACK every delivery; both brokers' defaults for in-flight/queued messages`),
      {
        measure: `memory per idle mTLS connection (${sizes.idle} connections)`,
        moat: memory.moat!.perConnection,
        reference: memory.mosquitto!.perConnection,
        referenceName: mosquittoName,
        unit: "bytes",
        higherIsBetter: false,
        goal: "< 40 KiB (Moat)",
        note: `(median RSS after - median RSS before) / connections, 3 samples each, Moat after a forced GC; per-sample spread Moat ${memory.moat!.spread}, Mosquitto ${memory.mosquitto!.spread}; open: Moat ${memory.moat!.open}, Mosquitto ${memory.mosquitto!.open}`,
      },
      { measure: "revocation-to-disconnect latency p50", moat: percentile(revocations, 50), reference: null, unit: "ms", higherIsBetter: false, goal: "< 100 ms", note: "change pushed in-process (API/same node); a CLI process adds up to feed.pollMs (100 ms default). Mosquitto without Moat keeps revoked sessions until they reconnect" },
      { measure: "revocation-to-disconnect latency p99", moat: percentile(revocations, 99), reference: null, unit: "ms", higherIsBetter: false, goal: "< 100 ms", note: `${revocations.length} revocations, measured to the client's socket close` },
      { measure: `revocation from another process (store feed, ${pollMs} ms polling) p50`, moat: percentile(viaStore, 50), reference: null, unit: "ms", higherIsBetter: false, goal: "< 1000 ms", note: "row written by a second Store on the same SQLite file, as `moat cert revoke` does" },
      { measure: `revocation from another process (store feed, ${pollMs} ms polling) p99`, moat: percentile(viaStore, 99), reference: null, unit: "ms", higherIsBetter: false, goal: "< 1000 ms (100 ms needs feed.pollMs <= 80)", note: `${viaStore.length} revocations` },
    ];
  } finally {
    await moat.request("stop").catch(() => undefined);
    await Promise.all([moat.stop(), load?.stop(), mosquitto?.stop()]);
  }
}

// A normal exit on SIGTERM, so that --cpu-prof gets written.
if (CHILD) process.on("SIGTERM", () => process.exit(0));
if (CHILD === "moat") void runMoatNode();
