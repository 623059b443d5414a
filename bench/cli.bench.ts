/**
 * How fast the CLI answers, against bare `node -e 0` started the same way in the same run: short
 * commands are dominated by start-up, so the ratio is what a user feels. Also the end-to-end time of a
 * revocation typed at the shell: from `moat cert revoke SERIAL` starting in its own process to the
 * broker (in this process, as `moat serve` runs it) closing the revoked device's live mTLS session.
 * Runs the built CLI (dist/cli/bin.js): `npm run build` first.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createPrivateKey } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import mqtt from "mqtt";
import pino from "pino";
import { loadConfig } from "../src/config/index.js";
import { initialize } from "../src/core.js";
import { startMqttBroker } from "../src/serve.js";
import type { BenchContext, BenchRow } from "./harness.js";

const BIN = fileURLToPath(new URL("../dist/cli/bin.js", import.meta.url));

/** Wall time of one run of `node ARGS` to its exit, in seconds. */
function timeRun(args: string[]): number {
  const started = process.hrtime.bigint();
  const run = spawnSync(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, MOAT_LOG_LEVEL: "silent" } });
  if (run.status !== 0) throw new Error(`node ${args.join(" ")} exited ${run.status}: ${run.stderr}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** Adds `count` devices in one transaction by copying a row the registry wrote, so every column stays valid. */
function cloneDevices(dbFile: string, seedId: string, count: number): void {
  const db = new Database(dbFile);
  const columns = (db.pragma("table_info(devices)") as { name: string }[]).map((c) => c.name);
  const select = columns.map((c) => (c === "id" || c === "name" ? "?" : `"${c}"`)).join(", ");
  const insert = db.prepare(`insert into devices (${columns.map((c) => `"${c}"`).join(", ")}) select ${select} from devices where id = ?`);
  db.transaction(() => {
    for (let i = 0; i < count; i++) {
      const id = `bulk-${String(i).padStart(6, "0")}`;
      // The new row's id and name, then the seed row to copy the other columns from.
      insert.run(id, id, seedId);
    }
  })();
  db.close();
}

export default async function cliBench(ctx: BenchContext): Promise<BenchRow[]> {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run npm run build first`);
  const rounds = ctx.quick ? 5 : 15;
  const dataDir = join(ctx.tmpDir, "data");
  execFileSync(process.execPath, [BIN, "--data-dir", dataDir, "init", "--json"], { stdio: "ignore" });
  execFileSync(process.execPath, [BIN, "--data-dir", dataDir, "device", "add", "sensor-1"], { stdio: "ignore" });

  // Interleaved, so a burst of load on the machine hits every command alike.
  const commands: Record<string, string[]> = {
    node: ["-e", "0"],
    version: [BIN, "--version"],
    help: [BIN, "--help"],
    list: [BIN, "--data-dir", dataDir, "device", "list"],
  };
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
  for (const args of Object.values(commands)) timeRun(args); // warm the file cache
  ctx.log(`timing --version, --help and device list against node -e 0, ${rounds} rounds`);
  for (let i = 0; i < rounds; i++) for (const [name, args] of Object.entries(commands)) times[name]!.push(timeRun(args));
  const median = (name: string) => quantile(times[name]!, 0.5) * 1000;
  const node = median("node");

  const bulk = ctx.quick ? 20_000 : 100_000;
  ctx.log(`adding ${bulk} devices`);
  cloneDevices(join(dataDir, "moat.db"), "sensor-1", bulk);
  const big: number[] = [];
  for (let i = 0; i < Math.min(rounds, 7); i++) big.push(timeRun(commands.list!));

  const revocation = await revocationLatency(ctx, ctx.quick ? 5 : 20);
  const ms = (values: number[], q: number) => quantile(values, q) * 1000;
  return [
    { measure: "moat --version (median wall time)", moat: median("version"), reference: node, referenceName: "node -e 0", unit: "ms", higherIsBetter: false, goal: ">= 0.5x (at most 2x bare node)" },
    { measure: "moat --help (median wall time)", moat: median("help"), reference: node, referenceName: "node -e 0", unit: "ms", higherIsBetter: false, goal: ">= 0.5x (at most 2x bare node)" },
    { measure: "moat device list, 1 device, SQLite (median)", moat: median("list"), reference: node, referenceName: "node -e 0", unit: "ms", higherIsBetter: false, goal: ">= 0.33x (at most 3x bare node)" },
    {
      measure: `moat device list, ${bulk.toLocaleString("en-US")} devices, SQLite (median)`,
      moat: quantile(big, 0.5) * 1000,
      reference: node,
      referenceName: "node -e 0",
      unit: "ms",
      higherIsBetter: false,
      goal: "<= 500 ms absolute",
      note: "first page (100)",
    },
    {
      measure: `revocation: moat cert revoke start → live mTLS session closed, p50 (${revocation.length} rounds)`,
      moat: ms(revocation, 0.5),
      reference: node,
      referenceName: "node -e 0",
      unit: "ms",
      higherIsBetter: false,
      goal: "< 500 ms",
      note: "CLI as a child process; broker in the bench process",
    },
    { measure: `revocation: p99 (${revocation.length} rounds)`, moat: ms(revocation, 0.99), reference: null, unit: "ms", higherIsBetter: false, goal: "< 1000 ms" },
  ];
}

/** Seconds from spawning `moat cert revoke SERIAL` to the broker closing that device's session, per round. */
async function revocationLatency(ctx: BenchContext, rounds: number): Promise<number[]> {
  const dataDir = join(ctx.tmpDir, "revocation");
  const config = loadConfig({ env: {}, flags: { dataDir, logLevel: "silent", "broker.mqttPort": 0, apiPort: 0, pkiPort: 0 } });
  const { app } = await initialize(config, { trustDomain: "bench.moat", keyType: "ec-p256", hostnames: ["localhost", "127.0.0.1"] });
  const node = await startMqttBroker(app, pino({ level: "silent" }));
  const chain = await app.ca.chainPem();
  const results: number[] = [];
  try {
    ctx.log(`revocation through the CLI, ${rounds} rounds`);
    for (let i = 0; i < rounds; i++) {
      const id = `revoked-${i}`;
      await app.devices.create({ id }, "bench");
      const issued = await app.pki.certificates.issueWithGeneratedKey({ deviceId: id, actor: "bench" });
      const key = createPrivateKey({ key: issued.privateKeyPkcs8Der, format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }).toString();
      const client = await mqtt.connectAsync(`mqtts://localhost:${node.broker.ports.tls}`, { ca: chain, cert: issued.certificatePem, key, clientId: id, protocolVersion: 4, reconnectPeriod: 0 });
      const closed = new Promise<bigint>((resolve) => client.once("close", () => resolve(process.hrtime.bigint())));
      const started = process.hrtime.bigint();
      const cli = spawn(process.execPath, [BIN, "--data-dir", dataDir, "cert", "revoke", issued.serialHex, "--reason", "keyCompromise"], { stdio: "ignore" });
      const exited = new Promise<number | null>((resolve) => cli.on("exit", resolve));
      const at = await closed;
      if ((await exited) !== 0) throw new Error(`moat cert revoke exited non-zero in round ${i}`);
      results.push(Number(at - started) / 1e9);
      await client.endAsync(true);
    }
  } finally {
    await node.close();
    await app.close();
  }
  return results;
}
