/**
 * Detection: quality, latency to alert, cost.
 * - Quality and latency: the benign fleet of bench/detect/benign-model.json (≥ 10,000 device-hours) with
 *   the attacks of bench/detect/attacks.json, generated from their seeds and replayed through the
 *   built-in rules on a simulated clock. False alarms per 10,000 device-hours; recall per attack type;
 *   time from attack start to alert (p95) for burst, topic probing and credential stuffing.
 * - Heap: the metric state of 100,000 devices that each published, connected and were refused in every
 *   window, measured in a child process with --expose-gc (heap + array buffers, before and after).
 * - Throughput: QoS 0 deliveries per second through Moat's broker with the detection engine on its
 *   traffic port and its event stream, against the same broker without, in interleaved rounds
 *   (off, on, on, off, …) driven by the raw-protocol load generator (bench/load/); median ratio.
 */
import "reflect-metadata";
import { fork } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchContext, BenchRow } from "./harness.js";
import { generatorCpu, LoadGenerator, percentile, writeCredentials } from "./load/generator.js";
import { freePort, waitForPort } from "./load/mosquitto.js";
import { credentialsOf, makeBenchPki, type BenchPki } from "./load/pki.js";

const CHILD = process.env.MOAT_DETECT_BENCH_CHILD;
const SELF = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------------------------------------
// Quality and latency (in process, simulated clock)

async function quality(ctx: BenchContext): Promise<BenchRow[]> {
  const { generate } = await import("./detect/traffic-model.js");
  const { BUILTIN_RULES, DetectionEngine } = await import("../src/detect/index.js");
  const { memoryPorts } = await import("../src/detect/replay.js");
  const { cidrContains, parseCidr, parseIp } = await import("../src/lib/ip-address.js");
  const model = generate(ctx.quick ? { devices: 1000, hours: 11 } : {});
  const { benign } = (await import("./detect/traffic-model.js")).loadModels();
  const warmupEnd = (await import("./detect/traffic-model.js")).T0 + benign.warmupHours * 3_600_000;
  const countedHours = model.deviceHours - model.devices.size * benign.warmupHours;
  let clock = 0;
  const signals: { rule: string; subject: { kind: string; id: string }; at: number }[] = [];
  const engine = new DetectionEngine({
    rules: BUILTIN_RULES,
    ports: memoryPorts({ deviceGroups: Object.fromEntries(model.devices), groups: model.groups }),
    now: () => clock,
    onAlert: (s) => signals.push({ rule: s.rule, subject: s.subject, at: s.at }),
  });
  await engine.reloadGroups();
  ctx.log(`detect quality: replaying ${model.deviceHours} device-hours with ${model.attacks.length} injected attacks`);
  const started = Date.now();
  let events = 0;
  for (const e of model.events()) {
    clock = e.at;
    events++;
    if (e.type === "traffic.published") engine.published(e.subject!, Number(e.data!.bytes));
    else engine.ingest(e);
    if (events % 50_000 === 0) await engine.settle();
  }
  await engine.settle();
  const replayMs = Date.now() - started;
  const sameSubject = (a: { kind: string; id: string }, s: { kind: string; id: string }) => {
    if (a.kind !== s.kind) return false;
    if (a.kind === "device") return a.id === s.id;
    const block = parseCidr(a.id);
    const probe = parseIp(s.id.split("/")[0]!);
    return a.id === s.id || (block !== null && probe !== null && cidrContains(block, probe));
  };
  const caught = new Map<string, number[]>();
  const total = new Map<string, number>();
  for (const attack of model.attacks) {
    total.set(attack.type, (total.get(attack.type) ?? 0) + 1);
    const hit = signals.find((s) => s.rule === attack.rule && sameSubject(attack.subject, s.subject) && s.at >= attack.start && s.at <= attack.start + 60_000);
    if (hit) (caught.get(attack.type) ?? caught.set(attack.type, []).get(attack.type)!).push(hit.at - attack.start);
  }
  // A firing about an attacked subject during or soon after its attack is the attack's; anything else is a false alarm.
  const unexplained = signals.filter((s) => !model.attacks.some((a) => sameSubject(a.subject, s.subject) && s.at >= a.start && s.at <= a.start + 10 * 60_000));
  const falseAlarms = unexplained.filter((s) => s.at >= warmupEnd);
  const warmupAlarms = unexplained.length - falseAlarms.length;
  const perTenK = (falseAlarms.length / countedHours) * 10_000;
  const recall = [...total].reduce((n, [type]) => n + (caught.get(type)?.length ?? 0), 0) / model.attacks.length;
  const rows: BenchRow[] = [
    {
      measure: `false alarms per 10,000 device-hours (${countedHours} benign device-hours after a ${benign.warmupHours} h warm-up, built-in rules)`,
      moat: Math.round(perTenK * 100) / 100,
      reference: null,
      unit: "alarms",
      higherIsBetter: false,
      goal: "<= 1",
      note: `${falseAlarms.length} false alarms${falseAlarms.length ? ` (${[...new Set(falseAlarms.map((f) => f.rule))].join(", ")})` : ""}; ${warmupAlarms} more in the warm-up hour, when the whole fleet is new and baselines come from the group; ${events} events replayed in ${(replayMs / 1000).toFixed(1)} s`,
    },
    {
      measure: `recall over ${model.attacks.length} injected attacks (burst, topic scan, brute force, new source network, flapping)`,
      moat: Math.round(recall * 1000) / 10,
      reference: null,
      unit: "%",
      higherIsBetter: true,
      goal: ">= 95",
      note: [...total].map(([type, n]) => `${type} ${caught.get(type)?.length ?? 0}/${n}`).join(", "),
    },
  ];
  for (const [type, measure, goal] of [
    ["burst", "publish-rate burst", 5],
    ["topic-scan", "topic probing", 1],
    ["brute-force", "credential stuffing", 2],
  ] as const) {
    const lat = caught.get(type) ?? [];
    rows.push({
      measure: `time from attack start to alert, ${measure} (p95, simulated clock)`,
      moat: lat.length ? Math.round(percentile(lat, 95)) / 1000 : NaN,
      reference: null,
      unit: "s",
      higherIsBetter: false,
      goal: `<= ${goal}`,
      note: `${lat.length} attacks; p50 ${lat.length ? (percentile(lat, 50) / 1000).toFixed(2) : "-"} s; the attack rates are those of bench/detect/attacks.json; the live path adds the event's audit append (milliseconds)`,
    });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Heap of 100,000 devices' metric state (child with --expose-gc)

async function heapChild(): Promise<void> {
  const { MetricStore } = await import("../src/detect/index.js");
  const gc = (globalThis as { gc?: () => void }).gc!;
  const devices = Number(process.env.MOAT_DETECT_BENCH_DEVICES ?? 100_000);
  const used = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const before = used();
  const store = new MetricStore();
  const t0 = Date.parse("2026-01-05T08:00:00Z");
  // Every device is active in every window: buckets of all four rings hold data.
  for (let step = 0; step < 4; step++) {
    const now = t0 + step * 900_000;
    for (let i = 0; i < devices; i++) {
      const id = `device-${String(i).padStart(6, "0")}`;
      store.published(id, 100 + (i % 400), now);
      store.delivered(id, now);
      store.addNarrow(id, "connectAttempts", now);
      store.sawAddress(id, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, now);
      if (i % 10 === 0) store.deniedTopic(id, `devices/x/${step}`, now);
    }
  }
  const after = used();
  process.send!({ bytes: after - before, devices: store.size, held: store.heldBytes() });
}

async function heap(ctx: BenchContext): Promise<BenchRow> {
  const devices = 100_000;
  ctx.log(`detect heap: metric state of ${devices} devices (child with --expose-gc)`);
  const child = fork(SELF, [], { execArgv: ["--expose-gc", "--import", "tsx"], env: { ...process.env, MOAT_DETECT_BENCH_CHILD: "heap", MOAT_DETECT_BENCH_DEVICES: String(devices) } });
  const result = await new Promise<{ bytes: number; devices: number; held: number }>((resolve, reject) => {
    child.once("message", (m) => resolve(m as never));
    child.once("exit", (code) => reject(new Error(`heap child exited with ${code}`)));
  });
  child.kill();
  return {
    measure: `heap for ${result.devices} devices' metric state (4 windows, all series)`,
    moat: Math.round((result.bytes / 1024 / 1024) * 10) / 10,
    reference: null,
    unit: "MiB",
    higherIsBetter: false,
    goal: "<= 150",
    note: `heapUsed + arrayBuffers after GC, minus before; typed arrays ${(result.held / 1024 / 1024).toFixed(1)} MiB; ${Math.round(result.bytes / result.devices)} B per device`,
  };
}

// ---------------------------------------------------------------------------------------------
// QoS 0 throughput with detection on and off (broker nodes in children)

async function brokerChild(): Promise<void> {
  const { startBroker, InMemoryDeviceDirectory } = await import("../src/broker/index.js");
  const { isDeviceId } = await import("../src/identity/index.js");
  const { BUILTIN_ROLES, compilePolicy } = await import("../src/policy/index.js");
  const { BUILTIN_RULES, DetectionEngine } = await import("../src/detect/index.js");
  const { memoryPorts } = await import("../src/detect/replay.js");
  const detection = process.env.MOAT_DETECT_BENCH_DETECTION === "on";
  let broker: Awaited<ReturnType<typeof startBroker>> | null = null;
  process.on("message", async (msg: { op: string; pkiFile?: string; port?: number }) => {
    if (msg.op === "start") {
      const pki = JSON.parse(readFileSync(String(msg.pkiFile), "utf8")) as BenchPki;
      const directory = new InMemoryDeviceDirectory(isDeviceId);
      for (const d of pki.devices) directory.put({ id: d.id, certSerials: [d.serial] });
      const collector = { name: "collector", rules: [{ effect: "allow" as const, action: "subscribe", resource: "devices/+/telemetry/#" }, { effect: "allow" as const, action: "receive", resource: "devices/+/telemetry/#" }] };
      const decider = compilePolicy({ roles: [...BUILTIN_ROLES, collector], assignments: pki.devices.flatMap((d) => [{ role: "device", kind: "device" as const, target: d.id }, { role: "collector", kind: "device" as const, target: d.id }]) });
      const engine = detection ? new DetectionEngine({ rules: BUILTIN_RULES, ports: memoryPorts(), onAlert: () => undefined }) : null;
      const ticker = engine ? setInterval(() => engine.tick(), 1000) : null;
      ticker?.unref();
      broker = await startBroker(
        {
          directory,
          revocationSource: directory,
          decider,
          events: { emit: async (event) => engine?.ingest(event) },
          feed: { subscribe: () => () => undefined, latestSeq: async () => 0 },
          tls: { load: async () => ({ certPem: pki.serverCertPem, keyPem: pki.serverKeyPem, caPems: [pki.chainPem], issuingCaPems: [pki.issuingPem] }) },
          ...(engine ? { traffic: { published: (id: string, bytes: number) => engine.published(id, bytes), delivered: (id: string) => engine.delivered(id) } } : {}),
        },
        { host: "127.0.0.1", mqttPort: Number(msg.port), messagesPerSecond: 1_000_000, rateBurst: 1_000_000, authFailureLimit: 1000 },
      );
      process.send!({ started: true });
    }
    if (msg.op === "stop") {
      await broker?.close();
      process.send!({ stopped: true });
    }
  });
  process.send!({ ready: true });
}

function startNode(detection: boolean) {
  const child = fork(SELF, [], { execArgv: ["--import", "tsx"], env: { ...process.env, MOAT_DETECT_BENCH_CHILD: "broker", MOAT_DETECT_BENCH_DETECTION: detection ? "on" : "off" } });
  const next = () => new Promise<any>((resolve) => child.once("message", resolve));
  return { child, next };
}

async function throughput(ctx: BenchContext): Promise<BenchRow> {
  const sizes = ctx.quick ? { rounds: 2, pairsPerWorker: 25, inflight: 50, windowMs: 2000 } : { rounds: 4, pairsPerWorker: 25, inflight: 50, windowMs: 4000 };
  const workers = 2;
  const deviceCount = workers * 2 * sizes.pairsPerWorker;
  ctx.log(`detect throughput: issuing ${deviceCount} device certificates`);
  const pki = await makeBenchPki(deviceCount);
  const pkiFile = join(ctx.tmpDir, "detect-pki.json");
  writeFileSync(pkiFile, JSON.stringify(pki), { mode: 0o600 });
  const credentialsFile = writeCredentials(ctx.tmpDir, credentialsOf(pki));
  const nodes = { off: startNode(false), on: startNode(true) };
  const ports = { off: await freePort(), on: await freePort() };
  let load: LoadGenerator | null = null;
  const rates: Record<"on" | "off", number[]> = { on: [], off: [] };
  let generatorCores = 0;
  try {
    for (const key of ["off", "on"] as const) {
      await nodes[key].next();
      const started = nodes[key].next();
      nodes[key].child.send({ op: "start", pkiFile, port: ports[key] });
      await started;
      await waitForPort(ports[key], () => nodes[key].child.exitCode === null, `the broker node with detection ${key}`);
    }
    load = await LoadGenerator.start({ workers, credentialsFile, deviceCount });
    for (let round = 0; round < sizes.rounds; round++) {
      const order = round % 2 === 0 ? (["off", "on"] as const) : (["on", "off"] as const);
      for (const key of order) {
        const results = await load.all("flow", { target: { host: "127.0.0.1", port: ports[key], servername: "localhost", version: 4 }, pairs: sizes.pairsPerWorker, qos: 0, warmupMs: 1000, windowMs: sizes.windowMs, inflight: sizes.inflight, payloadBytes: 256 });
        const windowMs = Math.max(...results.map((r: any) => r.windowMs));
        rates[key].push((results.reduce((n: number, r: any) => n + r.delivered, 0) / windowMs) * 1000);
        generatorCores = Math.max(generatorCores, generatorCpu(results).cores);
        ctx.log(`round ${round + 1}/${sizes.rounds} detection ${key}: ${Math.round(rates[key].at(-1)!)} msg/s`);
      }
    }
  } finally {
    await load?.stop();
    for (const node of Object.values(nodes)) {
      if (node.child.exitCode === null) node.child.send({ op: "stop" });
      await new Promise((r) => setTimeout(r, 300));
      node.child.kill();
    }
  }
  const on = percentile(rates.on, 50);
  const off = percentile(rates.off, 50);
  const ratios = rates.on.map((r, i) => r / rates.off[i]!);
  return {
    measure: `QoS 0 deliveries per second with detection on (${workers * sizes.pairsPerWorker} pub -> sub pairs, 256 B)`,
    moat: Math.round(on),
    reference: Math.round(off),
    referenceName: "the same broker with detection off",
    unit: "msg/s",
    higherIsBetter: true,
    goal: ">= 0.95x",
    note: `median of ${sizes.rounds} interleaved rounds each; per-round ratios ${ratios.map((r) => r.toFixed(2)).join(", ")}; on ${rates.on.map(Math.round).join("/")}, off ${rates.off.map(Math.round).join("/")}; generator up to ${generatorCores.toFixed(2)} cores; machine shared with other work`,
  };
}

export default async function detectBench(ctx: BenchContext): Promise<BenchRow[]> {
  const rows = await quality(ctx);
  rows.push(await heap(ctx));
  rows.push(await throughput(ctx));
  return rows;
}

if (CHILD === "heap") void heapChild();
if (CHILD === "broker") void brokerChild();
