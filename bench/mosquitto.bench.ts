/**
 * Mosquitto as Moat's data plane (`moat mosquitto setup` + `moat serve` with broker.mode = mosquitto)
 * against the same Mosquitto without Moat, side by side in one run with the same load generator:
 * - the reference runs the configuration `moat mosquitto setup` wrote (same TLS listener, cipher lists,
 *   CRL, log types, persistence), minus the dynamic-security plugin and Moat's control socket, plus a
 *   static acl_file equivalent to the bench role Moat compiles into dynamic security; it even serves
 *   the same server certificate (copied from the runtime directory of the running `moat serve`);
 * - mTLS connects/s, QoS 0 and QoS 1 deliveries/s in interleaved rounds, with the CPU of each Mosquitto,
 *   of `moat serve`, of the generator and of other processes;
 * - revocation to disconnect from the start of `moat cert revoke` (a child process) to the broker
 *   closing the device's live session, and whether the revoked certificate is refused afterwards.
 * Runs the built CLI (`npm run build` first).
 */
import "reflect-metadata";
import { spawn } from "node:child_process";
import { chmodSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createSecureContext } from "node:tls";
import { loadConfig } from "../src/config/index.js";
import { initialize } from "../src/core.js";
import { toPem } from "../src/pki/index.js";
import type { BenchContext, BenchRow } from "./harness.js";
import { LoadConnection, type Target } from "./load/connection.js";
import { LoadGenerator, percentile, REPO_ROOT, spawnWithFdLimit, writeCredentials } from "./load/generator.js";
import { connectRate, deliveryRate, median, range, sleep, type BrokerUnderTest, type RateSample } from "./load/measure.js";
import { BENCH_ACL, freePort, MOSQUITTO_BIN, startMosquittoWith, waitForPort, type MosquittoInstance } from "./load/mosquitto.js";
import { processCpuMs } from "./load/proc.js";

const BIN = join(REPO_ROOT, "dist/cli/bin.js");
const PAYLOAD_BYTES = 256;

/** The role the bench's devices hold: the built-in device role plus reading everyone's telemetry (BENCH_ACL). */
const BENCH_ROLE_RULES = [
  { effect: "allow" as const, action: "publish", resource: "devices/${device.id}/telemetry/#" },
  { effect: "allow" as const, action: "publish", resource: "devices/${device.id}/events/#" },
  { effect: "allow" as const, action: "publish", resource: "devices/${device.id}/status" },
  { effect: "allow" as const, action: "subscribe", resource: "devices/${device.id}/commands/#" },
  { effect: "allow" as const, action: "receive", resource: "devices/${device.id}/commands/#" },
  { effect: "allow" as const, action: "subscribe", resource: "devices/${device.id}/ota" },
  { effect: "allow" as const, action: "receive", resource: "devices/${device.id}/ota" },
  { effect: "allow" as const, action: "subscribe", resource: "devices/+/telemetry/#" },
  { effect: "allow" as const, action: "receive", resource: "devices/+/telemetry/#" },
];

function runCli(dataDir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, "--data-dir", dataDir, ...args], { env: { ...process.env, MOAT_LOG_LEVEL: "error", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The pid of the mosquitto process `moat serve` runs (a direct child of it). */
function mosquittoChildOf(pid: number): number | null {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  return children.find((c) => existsSync(`/proc/${c}/comm`) && readFileSync(`/proc/${c}/comm`, "utf8").trim() === "mosquitto") ?? null;
}

/**
 * The reference configuration: Moat's own mosquitto.conf with what only Moat needs taken out (the
 * dynamic-security plugin, the control socket) and a static ACL put in; files that live in Moat's
 * directories are copied into the reference's own.
 */
function referenceConf(moatConf: string, file: (name: string, text: string) => string, port: number, dir: string): string[] {
  const copy = (path: string, name: string) => file(name, readFileSync(path, "utf8"));
  const out: string[] = [];
  for (const line of moatConf.split("\n")) {
    const [directive, ...rest] = line.trim().split(/\s+/);
    const value = rest.join(" ");
    if (!directive || directive.startsWith("#")) continue;
    if (directive === "plugin" || directive.startsWith("plugin_opt_")) continue;
    if (directive === "listener" && rest[0] === "0") continue;
    if (directive === "listener") out.push(`listener ${port} 127.0.0.1`, `acl_file ${file("mosquitto.acl", BENCH_ACL)}`);
    else if (directive === "persistence_location") out.push(`persistence_location ${dir}/`);
    else if (directive === "certfile") out.push(`certfile ${copy(value, "server.crt")}`);
    else if (directive === "keyfile") out.push(`keyfile ${copy(value, "server.key")}`);
    else if (directive === "cafile") out.push(`cafile ${copy(value, "ca.pem")}`);
    else if (directive === "crlfile") out.push(`crlfile ${copy(value, "crl.pem")}`);
    else out.push(line.trim());
  }
  return out;
}

export default async function mosquittoBench(ctx: BenchContext): Promise<BenchRow[]> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build first`);
  if (!existsSync(MOSQUITTO_BIN)) throw new Error(`${MOSQUITTO_BIN} is missing: apt-get install -y mosquitto`);
  const sizes = ctx.quick
    ? { rounds: 2, connectsPerWorker: 200, pairsPerWorker: 25, inflight: 50, windowMs: 2000, revocations: 5 }
    : { rounds: 4, connectsPerWorker: 400, pairsPerWorker: 25, inflight: 50, windowMs: 4000, revocations: 20 };
  const workers = 2;
  const loadDevices = workers * Math.max(2 * sizes.pairsPerWorker, 50);

  // Setup (not measured): an installation with the bench role, devices and their certificates.
  const dataDir = join(ctx.tmpDir, "data");
  const mqDir = join(ctx.tmpDir, "mq");
  const ports = { api: await freePort(), mqtt: await freePort(), pki: await freePort() };
  const config = loadConfig({ env: {}, flags: { dataDir, logLevel: "silent", "broker.mqttPort": ports.mqtt, apiPort: ports.api, pkiPort: ports.pki } });
  const { app } = await initialize(config, { trustDomain: "mq.bench", keyType: "ec-p256", hostnames: ["localhost", "127.0.0.1"] });
  const devices: { id: string; certPem: string; keyPem: string; serial: string }[] = [];
  let chainPem: string;
  try {
    chainPem = await app.ca.chainPem();
    await app.policy.createRole("bench-device", BENCH_ROLE_RULES, "bench");
    ctx.log(`setup: ${loadDevices + sizes.revocations} devices with certificates`);
    for (let i = 0; i < loadDevices + sizes.revocations; i++) {
      const id = `mq-${String(i).padStart(5, "0")}`;
      await app.devices.create({ id, role: "bench-device" }, "bench");
      const issued = await app.pki.certificates.issueWithGeneratedKey({ deviceId: id, actor: "bench" });
      devices.push({ id, certPem: issued.certificatePem, keyPem: toPem(issued.privateKeyPkcs8Der, "PRIVATE KEY"), serial: issued.serialHex });
    }
  } finally {
    await app.close();
  }
  // Mosquitto drops to its own account when started as root: it must be able to reach the directories.
  chmodSync(ctx.tmpDir, 0o711);
  const setup = await runCli(dataDir, ["mosquitto", "setup", "--dir", mqDir, "--port", String(ports.mqtt), "--json"]);
  if (setup.code !== 0) throw new Error(`moat mosquitto setup failed: ${setup.stderr}`);

  const serve = spawnWithFdLimit(process.execPath, [BIN, "--data-dir", dataDir, "serve", "--api-port", String(ports.api), "--pki-port", String(ports.pki)], {
    env: { ...process.env, MOAT_LOG_LEVEL: "error", MOAT_BROKER_MODE: "mosquitto", MOAT_BROKER_MOSQUITTO_DIR: mqDir },
    stderr: "pipe",
  });
  let serveLog = "";
  serve.stderr!.on("data", (d) => (serveLog += d));
  const serveAlive = () => serve.exitCode === null && serve.signalCode === null;
  let reference: MosquittoInstance | null = null;
  let load: LoadGenerator | null = null;
  const victims: LoadConnection[] = [];
  try {
    await waitForPort(ports.mqtt, serveAlive, `moat serve (broker.mode = mosquitto): ${serveLog}`, 60_000);
    const moatTarget: Target = { host: "127.0.0.1", port: ports.mqtt, servername: "localhost", version: 4 };
    // Ready when a device gets in: its client and role are in Mosquitto's dynamic security by then.
    const probe = devices[0]!;
    for (let attempt = 0; ; attempt++) {
      const ok = await LoadConnection.open(moatTarget, createSecureContext({ ca: chainPem, cert: probe.certPem, key: probe.keyPem }), probe.id, { timeoutMs: 5000 }).then(
        async (c) => (await c.end(), true),
        () => false,
      );
      if (ok) break;
      if (attempt > 100 || !serveAlive()) throw new Error(`Moat-controlled Mosquitto never accepted a device: ${serveLog}`);
      await sleep(200);
    }
    const controlledPid = mosquittoChildOf(serve.pid!);
    if (controlledPid === null) throw new Error("no mosquitto child of moat serve");
    const moatConf = readFileSync(join(mqDir, "mosquitto.conf"), "utf8");
    reference = await startMosquittoWith(join(ctx.tmpDir, "reference"), (file, port, dir) => referenceConf(moatConf, file, port, dir));

    const credentialsFile = writeCredentials(ctx.tmpDir, { caPem: chainPem, devices: devices.slice(0, loadDevices).map((d) => ({ id: d.id, certPem: d.certPem, keyPem: d.keyPem })) });
    load = await LoadGenerator.start({ workers, credentialsFile, deviceCount: loadDevices });
    const ref = reference;
    const brokers: BrokerUnderTest[] = [
      { name: "moat", pid: controlledPid, target: moatTarget, rss: async () => 0 },
      { name: "mosquitto", pid: ref.pid, target: { ...moatTarget, port: ref.port }, rss: async () => 0 },
    ];
    const samples: Record<string, Record<string, RateSample[]>> = { moat: { connect: [], qos0: [], qos1: [] }, mosquitto: { connect: [], qos0: [], qos1: [] } };
    const serveCpu: Record<string, number[]> = { moat: [], mosquitto: [] };
    for (let round = 0; round < sizes.rounds; round++) {
      for (const broker of round % 2 === 0 ? brokers : [...brokers].reverse()) {
        ctx.log(`round ${round + 1}/${sizes.rounds} ${broker.name === "moat" ? "Moat-controlled Mosquitto" : "plain Mosquitto"}: connects, QoS 0, QoS 1`);
        const cpu0 = processCpuMs(serve.pid!);
        const t0 = performance.now();
        samples[broker.name]!.connect!.push(await connectRate(load, broker, sizes.connectsPerWorker));
        for (const qos of [0, 1] as const) samples[broker.name]![`qos${qos}`]!.push(await deliveryRate(load, broker, qos, { pairs: sizes.pairsPerWorker, inflight: sizes.inflight, windowMs: sizes.windowMs, payloadBytes: PAYLOAD_BYTES }));
        serveCpu[broker.name]!.push((processCpuMs(serve.pid!) - cpu0) / (performance.now() - t0));
      }
    }

    ctx.log(`revocation: ${sizes.revocations} devices revoked with moat cert revoke while connected`);
    const revocationMs: number[] = [];
    let refusedAfter = 0;
    let refusedLater = 0;
    let neverRefused = 0;
    for (const device of devices.slice(loadDevices)) {
      const context = createSecureContext({ ca: chainPem, cert: device.certPem, key: device.keyPem });
      const conn = await LoadConnection.open(moatTarget, context, device.id);
      victims.push(conn);
      await sleep(200);
      const t0 = performance.now();
      const cli = runCli(dataDir, ["cert", "revoke", device.serial, "--reason", "keyCompromise"]);
      const closedAt = await Promise.race([conn.closed, sleep(10_000).then(() => Number.NaN)]);
      revocationMs.push(closedAt - t0);
      const done = await cli;
      if (done.code !== 0) throw new Error(`moat cert revoke failed: ${done.stderr}`);
      // Refused from that moment on (issue 18): try at once after the close and the CLI's exit, and again 2 s later.
      const refused = () =>
        LoadConnection.open(moatTarget, context, device.id, { timeoutMs: 5000 }).then(
          async (c) => (await c.end(), false),
          () => true,
        );
      if (await refused()) refusedAfter++;
      else {
        await sleep(2000);
        if (await refused()) refusedLater++;
        else neverRefused++;
      }
    }

    const name = "plain Mosquitto 2.0 (Moat's conf minus dynsec, static acl_file, same cert)";
    const row = (key: "connect" | "qos0" | "qos1", measure: string, unit: string, extra: string): BenchRow => {
      const m = samples.moat![key]!;
      const q = samples.mosquitto![key]!;
      const cond = (s: RateSample[]) => `mosquitto ${median(s.map((x) => x.brokerCores)).toFixed(2)}, generator ${median(s.map((x) => x.generatorCores)).toFixed(2)}, others ${median(s.map((x) => x.otherCores)).toFixed(2)}`;
      return {
        measure,
        moat: median(m.map((s) => s.rate)),
        reference: median(q.map((s) => s.rate)),
        referenceName: name,
        unit,
        higherIsBetter: true,
        goal: ">= 0.95x",
        note: `median of ${sizes.rounds} interleaved rounds; Moat-controlled ${range(m.map((s) => s.rate))}, plain ${range(q.map((s) => s.rate))}; ratio per round ${m.map((s, i) => (s.rate / q[i]!.rate).toFixed(2)).join(", ")}; cores with Moat: ${cond(m)}, moat serve ${median(serveCpu.moat!).toFixed(2)}; plain: ${cond(q)}; ${extra}`,
      };
    };
    const valid = revocationMs.filter((v) => Number.isFinite(v));
    const pairs = workers * sizes.pairsPerWorker;
    return [
      row("connect", `Mosquitto data plane: mTLS connects/s (${workers}×20 concurrent)`, "conn/s", `${workers * sizes.connectsPerWorker} per round`),
      row("qos0", `Mosquitto data plane: QoS 0 deliveries/s (${pairs} pub -> ${pairs} sub, ${PAYLOAD_BYTES} B)`, "msg/s", `${sizes.windowMs / 1000} s windows`),
      row("qos1", `Mosquitto data plane: QoS 1 deliveries/s (${pairs} pub -> ${pairs} sub, ${PAYLOAD_BYTES} B)`, "msg/s", `${sizes.inflight} in flight per publisher`),
      {
        measure: `Mosquitto data plane: moat cert revoke start → live session closed, p99 (${valid.length} revocations)`,
        moat: percentile(valid, 99),
        reference: null,
        unit: "ms",
        higherIsBetter: false,
        goal: "< 1000 ms",
        note: `p50 ${percentile(valid, 50).toFixed(0)} ms, max ${Math.max(...valid).toFixed(0)} ms; the CLI runs as its own process on the same SQLite data dir (moat serve learns it from the change feed); ${revocationMs.length - valid.length} sessions not closed within 10 s; revoked certificate refused on a reconnect right after: ${refusedAfter}/${revocationMs.length}, only 2 s later: ${refusedLater}, still accepted after 2 s: ${neverRefused}`,
      },
    ];
  } finally {
    for (const v of victims) v.drop();
    await load?.stop();
    await reference?.stop();
    if (serveAlive()) {
      const exited = new Promise<void>((resolve) => serve.once("exit", () => resolve()));
      serve.kill("SIGTERM");
      await Promise.race([exited, sleep(15_000)]);
      if (serveAlive()) serve.kill("SIGKILL");
    }
  }
}
