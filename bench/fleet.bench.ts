/**
 * Fleet-scale figures for one `moat serve` (a child process, built CLI: `npm run build` first), with
 * Mosquitto 2.0 measured the same way beside it where it has an equivalent:
 * - N devices enrolled over EST (one-time tokens, P-256 CSRs over HTTPS) from the load generator's
 *   worker processes: enrollments/s;
 * - N concurrent mTLS connections held: time until all are connected, and RSS per connection (RSS after
 *   a forced GC at steady state, sampled several times, minus the same before, over N; `moat serve`
 *   runs with --expose-gc and a bench-only preload that collects on SIGUSR2, bench/load/gc-on-signal.mjs);
 * - steady telemetry: every device publishes QoS 1 at a fixed interval, with Moat's ACL and last-seen
 *   tracking on (Mosquitto: the equivalent acl_file): PUBACK latency and broker CPU;
 * - revocation to disconnect under that load: a device's certificate revoked through the API
 *   (`POST /v1/certificates/:serial/revoke`), timed until the broker closes its session;
 * - reconnect storm: every device drops its connection and reconnects at once (the generator keeps at
 *   most `storm` handshakes in flight per worker): time until all are connected again, Moat and
 *   Mosquitto in interleaved rounds.
 * MOAT_BENCH_DEVICES sets N (default 10,000 for the full run, 1,000 with --quick). The data dir is on the
 * scratch directory's disk; MOAT_BENCH_DATA_TMPFS=1 puts it on /dev/shm instead, which takes the disk's
 * fsync time out of SQLite's commits (every enrollment, connect event and last-seen flush commits), to
 * tell CPU limits from disk limits. The rows say which was used.
 */
import "reflect-metadata";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createSecureContext } from "node:tls";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../src/config/index.js";
import { initialize } from "../src/core.js";
import type { BenchContext, BenchRow } from "./harness.js";
import { LoadConnection, type Target } from "./load/connection.js";
import { generatorCpu, LoadGenerator, percentile, REPO_ROOT, spawnWithFdLimit, writeCredentials } from "./load/generator.js";
import { freePort, startMosquitto, waitForPort, type MosquittoInstance } from "./load/mosquitto.js";
import { CpuWindow, rssKiB } from "./load/proc.js";
import type { CredentialsFile, HoldResult } from "./load/protocol.js";

const BIN = join(REPO_ROOT, "dist/cli/bin.js");
const GC_HOOK = fileURLToPath(new URL("./load/gc-on-signal.mjs", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
const median = (values: number[]) => percentile(values, 50);
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

interface ServeProcess {
  pid: number;
  /** A full GC in the server (SIGUSR2 to the bench-only preload), then a moment for it to finish. */
  gc(): Promise<void>;
  stop(): Promise<void>;
}

async function startServe(dataDir: string, ports: { api: number; mqtt: number; pki: number }): Promise<ServeProcess> {
  const child = spawnWithFdLimit(
    process.execPath,
    ["--expose-gc", "--import", GC_HOOK, BIN, "--data-dir", dataDir, "serve", "--api-port", String(ports.api), "--mqtt-port", String(ports.mqtt), "--pki-port", String(ports.pki)],
    // The same log level as the Mosquitto beside it (log_type error).
    { env: { ...process.env, MOAT_LOG_LEVEL: "error" }, stderr: "pipe" },
  );
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const alive = () => child.exitCode === null && child.signalCode === null;
  try {
    await waitForPort(ports.api, alive, "moat serve", 60_000);
    await waitForPort(ports.mqtt, alive, "moat serve", 60_000);
  } catch (error) {
    child.kill("SIGTERM");
    throw new Error(`${(error as Error).message}: ${stderr}`);
  }
  return {
    pid: child.pid!,
    gc: async () => {
      child.kill("SIGUSR2");
      await sleep(500);
    },
    stop: async () => {
      if (!alive()) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(15_000)]);
      if (alive()) child.kill("SIGKILL");
    },
  };
}

/** RSS samples a short pause apart, each after `before` (a forced GC for Moat). */
async function rssSamples(pid: number, count: number, before: () => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    await before();
    out.push(rssKiB(pid));
    await sleep(300);
  }
  return out;
}

function revokeViaApi(apiPort: number, caPem: string, token: string, serial: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ reason: "keyCompromise" });
    const req = request(
      { host: "127.0.0.1", port: apiPort, path: `/v1/certificates/${serial}/revoke`, method: "POST", ca: caPem, headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`revoke ${serial}: HTTP ${res.statusCode} ${text}`))));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

interface HeldSummary {
  open: number;
  failed: number;
  seconds: number;
  errors: string;
  gen: string;
  brokerCores: number;
  otherCores: number;
}

async function holdAll(load: LoadGenerator, target: Target, pid: number, concurrency: number, op: "hold" | "storm"): Promise<HeldSummary> {
  if (op === "storm") await load.all("drop", { port: target.port });
  const window = new CpuWindow([pid, ...load.pids]);
  const results: HoldResult[] = await load.all("hold", { target, concurrency, timeoutMs: 120_000, keepaliveSeconds: 0 });
  const cpu = window.end();
  const errors: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
  const all = results.flatMap((r) => r.connackMs);
  return {
    open: sum(results.map((r) => r.open)),
    failed: sum(results.map((r) => r.failed)),
    seconds: Math.max(0, ...all) / 1000,
    errors: Object.keys(errors).length ? JSON.stringify(errors) : "none",
    gen: generatorCpu(results).text,
    brokerCores: cpu.perPid[0]!,
    otherCores: cpu.others(sum(cpu.perPid)),
  };
}

export default async function fleetBench(ctx: BenchContext): Promise<BenchRow[]> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build first`);
  const devices = Number(process.env.MOAT_BENCH_DEVICES ?? (ctx.quick ? 1000 : 10_000));
  if (!Number.isSafeInteger(devices) || devices < 10) throw new Error("MOAT_BENCH_DEVICES must be a whole number >= 10");
  const sizes = {
    workers: 2,
    enrollConcurrency: 8,
    connectConcurrency: 50,
    storm: ctx.quick ? 200 : 500,
    stormRounds: ctx.quick ? 1 : 2,
    telemetryIntervalMs: ctx.quick ? 5000 : 10_000,
    telemetryMs: ctx.quick ? 10_000 : 20_000,
    revocations: ctx.quick ? 10 : 20,
  };
  const total = devices + sizes.revocations;
  ctx.log(`N = ${devices} devices (+${sizes.revocations} to revoke)${process.env.MOAT_BENCH_DEVICES ? " (MOAT_BENCH_DEVICES)" : ""}`);

  // Setup (not measured): a data dir, the devices and one enrollment token each, made through the services.
  const onTmpfs = process.env.MOAT_BENCH_DATA_TMPFS === "1";
  const scratch = onTmpfs ? mkdtempSync(join("/dev/shm", "moat-fleet-")) : ctx.tmpDir;
  const dataDir = join(scratch, "data");
  const storage = onTmpfs ? "data dir on tmpfs (no fsync cost)" : "data dir on disk (SQLite synchronous=FULL)";
  ctx.log(storage);
  const ports = { api: await freePort(), mqtt: await freePort(), pki: await freePort() };
  const config = loadConfig({ env: {}, flags: { dataDir, logLevel: "silent", "broker.mqttPort": ports.mqtt, apiPort: ports.api, pkiPort: ports.pki } });
  const { app, adminToken } = await initialize(config, { trustDomain: "fleet.bench", keyType: "ec-p256", hostnames: ["localhost", "127.0.0.1"] });
  const ids = Array.from({ length: total }, (_, i) => `fleet-${String(i).padStart(6, "0")}`);
  const tokens: { id: string; token: string }[] = [];
  const setupStarted = performance.now();
  for (const [i, id] of ids.entries()) {
    await app.devices.create({ id }, "bench");
    tokens.push({ id, token: (await app.enrollmentTokens.create(id, 3_600_000, "bench")).token });
    if ((i + 1) % 2000 === 0) ctx.log(`setup: ${i + 1}/${total} devices and enrollment tokens`);
  }
  ctx.log(`setup: ${total} devices and tokens in ${((performance.now() - setupStarted) / 1000).toFixed(1)} s`);
  const chainPem = await app.ca.chainPem();
  const serverTls = await app.ca.serverTls();
  await app.close();

  const serve = await startServe(dataDir, ports);
  let mosquitto: MosquittoInstance | null = null;
  let load: LoadGenerator | null = null;
  const victims: LoadConnection[] = [];
  try {
    const emptyFile = writeCredentials(ctx.tmpDir, { caPem: chainPem, devices: [] });
    load = await LoadGenerator.start({ workers: sizes.workers, credentialsFile: emptyFile, deviceCount: 0 });

    // 1. EST enrollment from the generator's worker processes.
    ctx.log(`EST: enrolling ${total} devices from ${sizes.workers} processes × ${sizes.enrollConcurrency} concurrent requests`);
    const per = Math.ceil(total / sizes.workers);
    const enrollWindow = new CpuWindow([serve.pid, ...load.pids]);
    const enrolled = await load.all("enroll", (w) => ({ apiPort: ports.api, caPem: chainPem, devices: tokens.slice(w * per, (w + 1) * per), concurrency: sizes.enrollConcurrency }));
    const enrollCpu = enrollWindow.end();
    const enrollFailed = sum(enrolled.map((e) => e.failed));
    if (enrollFailed > 0) throw new Error(`${enrollFailed} enrollments failed: ${JSON.stringify(enrolled.map((e) => e.errors))}`);
    const enrollSeconds = Math.max(...enrolled.map((e) => e.wallMs)) / 1000;
    const enrollLatency = enrolled.flatMap((e) => e.latencyMs);
    ctx.log(`EST: ${total} enrolled in ${enrollSeconds.toFixed(1)} s (${(total / enrollSeconds).toFixed(1)}/s), request p99 ${percentile(enrollLatency, 99).toFixed(0)} ms`);
    const credentials: CredentialsFile = { caPem: chainPem, devices: enrolled.flatMap((e) => e.credentials).sort((a, b) => a.id.localeCompare(b.id)) };
    const fleet = credentials.devices.slice(0, devices);
    const toRevoke = credentials.devices.slice(devices);
    await load.assign(writeCredentials(ctx.tmpDir, { ...credentials, devices: fleet }), devices);

    // Mosquitto with the same server certificate, CA chain and an equivalent ACL.
    mosquitto = await startMosquitto(join(ctx.tmpDir, "mosquitto"), { chainPem, serverCertPem: serverTls.cert, serverKeyPem: serverTls.key });
    const moatTarget: Target = { host: "127.0.0.1", port: ports.mqtt, servername: "localhost", version: 4 };
    const mqTarget: Target = { host: "127.0.0.1", port: mosquitto.port, servername: "localhost", version: 4 };
    const brokers = [
      { name: "moat", target: moatTarget, pid: serve.pid, gc: () => serve.gc() },
      { name: "mosquitto", target: mqTarget, pid: mosquitto.pid, gc: async () => undefined },
    ] as const;

    // 2. N connections held on each broker, RSS before and after.
    const memory: Record<string, { perConnection: number; spread: string; open: number; hold: HeldSummary }> = {};
    for (const broker of brokers) {
      await sleep(500);
      const before = await rssSamples(broker.pid, 3, broker.gc);
      ctx.log(`${broker.name}: opening ${devices} mTLS connections (${sizes.workers}×${sizes.connectConcurrency} in flight)`);
      const hold = await holdAll(load, broker.target, broker.pid, sizes.connectConcurrency, "hold");
      if (hold.failed > 0) ctx.log(`${broker.name}: ${hold.failed} connections failed: ${hold.errors}`);
      await sleep(2000);
      const after = await rssSamples(broker.pid, 3, broker.gc);
      const perPair = after.flatMap((a) => before.map((b) => ((a - b) * 1024) / Math.max(1, hold.open)));
      memory[broker.name] = { perConnection: ((median(after) - median(before)) * 1024) / Math.max(1, hold.open), spread: `${kib(Math.min(...perPair))}–${kib(Math.max(...perPair))}`, open: hold.open, hold };
      ctx.log(`${broker.name}: ${hold.open} open in ${hold.seconds.toFixed(1)} s; RSS ${median(before)} → ${median(after)} KiB`);
    }

    // 3. Steady telemetry on every held connection; on Moat, revocations in the middle of it.
    const telemetry: Record<string, { p50: number; p99: number; sent: number; acked: number; brokerCores: number; otherCores: number; gen: string }> = {};
    const revocationMs: number[] = [];
    for (const broker of brokers) {
      ctx.log(`${broker.name}: steady telemetry, ${devices} devices × 1 QoS 1 message per ${sizes.telemetryIntervalMs / 1000} s for ${sizes.telemetryMs / 1000} s`);
      const window = new CpuWindow([broker.pid, ...load.pids]);
      const running = load.all("telemetry", { port: broker.target.port, qos: 1, intervalMs: sizes.telemetryIntervalMs, durationMs: sizes.telemetryMs, payloadBytes: 64 });
      if (broker.name === "moat") {
        await sleep(sizes.telemetryIntervalMs);
        for (const device of toRevoke) {
          const context = createSecureContext({ ca: chainPem, cert: device.certPem, key: device.keyPem });
          const conn = await LoadConnection.open(moatTarget, context, device.id);
          victims.push(conn);
          const serial = new X509Certificate(device.certPem).serialNumber.toLowerCase();
          const t0 = performance.now();
          await revokeViaApi(ports.api, chainPem, adminToken, serial);
          revocationMs.push((await Promise.race([conn.closed, sleep(10_000).then(() => Number.NaN)])) - t0);
          await sleep(100);
        }
      }
      const results = await running;
      const cpu = window.end();
      const latency = results.flatMap((r) => r.latencyMs);
      telemetry[broker.name] = {
        p50: percentile(latency, 50),
        p99: percentile(latency, 99),
        sent: sum(results.map((r) => r.sent)),
        acked: sum(results.map((r) => r.acked)),
        brokerCores: cpu.perPid[0]!,
        otherCores: cpu.others(sum(cpu.perPid)),
        gen: generatorCpu(results).text,
      };
      const t = telemetry[broker.name]!;
      ctx.log(`${broker.name}: telemetry ${t.acked}/${t.sent} acked, PUBACK p50 ${t.p50.toFixed(1)} ms, p99 ${t.p99.toFixed(1)} ms, broker ${t.brokerCores.toFixed(2)} cores`);
      if (broker.name === "moat") ctx.log(`moat: revocation to disconnect p50 ${percentile(revocationMs, 50).toFixed(1)} ms, p99 ${percentile(revocationMs, 99).toFixed(1)} ms`);
    }

    // 4. Reconnect storms, interleaved.
    const storms: Record<string, HeldSummary[]> = { moat: [], mosquitto: [] };
    for (let round = 0; round < sizes.stormRounds; round++) {
      for (const broker of round % 2 === 0 ? brokers : [...brokers].reverse()) {
        ctx.log(`${broker.name}: reconnect storm ${round + 1}/${sizes.stormRounds}, ${devices} devices, ${sizes.workers}×${sizes.storm} handshakes in flight`);
        const storm = await holdAll(load, broker.target, broker.pid, sizes.storm, "storm");
        storms[broker.name]!.push(storm);
        ctx.log(`${broker.name}: ${storm.open}/${devices} back in ${storm.seconds.toFixed(1)} s (${storm.failed} failed: ${storm.errors})`);
      }
    }
    for (const broker of brokers) await load.all("release", { port: broker.target.port });

    const ref = "Mosquitto 2.0 (same TLS, ACL file, log level, clients)";
    const conditions = `${sizes.workers} generator processes; ${storage}; 2 cores shared with other work`;
    const m = memory.moat!;
    const q = memory.mosquitto!;
    const tm = telemetry.moat!;
    const tq = telemetry.mosquitto!;
    const stormMedian = (name: string) => median(storms[name]!.map((s) => s.seconds));
    const stormNote = (name: string) => storms[name]!.map((s) => `${s.open}/${devices} back${s.open < devices ? " (NOT all: the rest failed, see failures)" : ""}, last after ${s.seconds.toFixed(1)} s (broker ${s.brokerCores.toFixed(2)}, others ${s.otherCores.toFixed(2)} cores; ${s.gen}; failures ${s.errors})`).join("; ");
    const validRevocations = revocationMs.filter((v) => Number.isFinite(v));
    return [
      {
        measure: `EST enrollments per second (${total} devices, P-256 CSR + one-time token over HTTPS)`,
        moat: total / enrollSeconds,
        reference: null,
        unit: "enroll/s",
        higherIsBetter: true,
        note: `${sizes.workers} client processes × ${sizes.enrollConcurrency} concurrent; request p50 ${percentile(enrollLatency, 50).toFixed(0)} ms, p99 ${percentile(enrollLatency, 99).toFixed(0)} ms; moat serve ${enrollCpu.perPid[0]!.toFixed(2)} cores, ${generatorCpu(enrolled).text}, others ${enrollCpu.others(sum(enrollCpu.perPid)).toFixed(2)} cores; keys and CSRs made before the clock; ${storage}`,
      },
      {
        measure: `${devices} concurrent mTLS connections: time until all connected`,
        moat: m.hold.seconds,
        reference: q.hold.seconds,
        referenceName: ref,
        unit: "s",
        higherIsBetter: false,
        note: `${sizes.workers}×${sizes.connectConcurrency} handshakes in flight; open Moat ${m.open}, Mosquitto ${q.open}; broker cores Moat ${m.hold.brokerCores.toFixed(2)}, Mosquitto ${q.hold.brokerCores.toFixed(2)}; others ${m.hold.otherCores.toFixed(2)} / ${q.hold.otherCores.toFixed(2)}; ${conditions}`,
      },
      {
        measure: `RSS per mTLS connection (${devices} held by one moat serve)`,
        moat: m.perConnection,
        reference: q.perConnection,
        referenceName: ref,
        unit: "bytes",
        higherIsBetter: false,
        goal: "< 40 KiB (Moat)",
        note: `(median RSS after - median RSS before) / open connections, 3 samples each, moat serve after a forced GC (--expose-gc, SIGUSR2 preload); spread over sample pairs Moat ${m.spread}, Mosquitto ${q.spread}`,
      },
      {
        measure: `steady telemetry PUBACK latency p99 (${devices} devices, QoS 1 every ${sizes.telemetryIntervalMs / 1000} s, ACL + last-seen on)`,
        moat: tm.p99,
        reference: tq.p99,
        referenceName: ref,
        unit: "ms",
        higherIsBetter: false,
        note: `p50 Moat ${tm.p50.toFixed(1)} ms, Mosquitto ${tq.p50.toFixed(1)} ms; acked/sent Moat ${tm.acked}/${tm.sent}, Mosquitto ${tq.acked}/${tq.sent}; ${sizes.telemetryMs / 1000} s; ${tm.gen} / ${tq.gen}; others ${tm.otherCores.toFixed(2)} / ${tq.otherCores.toFixed(2)} cores`,
      },
      {
        measure: `steady telemetry broker CPU (${devices} devices, ${Math.round(devices / (sizes.telemetryIntervalMs / 1000))} msg/s)`,
        moat: tm.brokerCores,
        reference: tq.brokerCores,
        referenceName: ref,
        unit: "cores",
        higherIsBetter: false,
        note: `CPU time of the broker process over the telemetry run / wall time (Moat's includes the API and the revocations it served); ${storage}`,
      },
      {
        measure: `revocation to disconnect under steady telemetry, p99 (${validRevocations.length} revocations via the API)`,
        moat: percentile(validRevocations, 99),
        reference: null,
        unit: "ms",
        higherIsBetter: false,
        goal: "< 1000 ms",
        note: `p50 ${percentile(validRevocations, 50).toFixed(1)} ms; from the start of POST /v1/certificates/:serial/revoke to the session's socket closing; ${revocationMs.length - validRevocations.length} not closed within 10 s; ${storage}`,
      },
      {
        measure: `reconnect storm: ${devices} devices reconnect at once, time until the last one connected (median of ${sizes.stormRounds})`,
        moat: stormMedian("moat"),
        reference: stormMedian("mosquitto"),
        referenceName: ref,
        unit: "s",
        higherIsBetter: false,
        note: `every device drops its connection, then all reconnect with ${sizes.workers}×${sizes.storm} handshakes in flight, each given up after 120 s without CONNACK; Moat: ${stormNote("moat")}; Mosquitto: ${stormNote("mosquitto")}; ${storage}`,
      },
    ];
  } finally {
    for (const v of victims) v.drop();
    await load?.stop();
    await Promise.all([serve.stop(), mosquitto?.stop()]);
    if (onTmpfs) rmSync(scratch, { recursive: true, force: true });
  }
}
