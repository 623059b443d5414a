import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import https from "node:https";
import { join } from "node:path";
import Database from "better-sqlite3";
import { canonicalJson } from "../src/crypto/index.js";
import { loadConfig } from "../src/config/index.js";
import { initialize } from "../src/core.js";
import { createLogger, startServers } from "../src/serve.js";
import type { BenchContext, BenchRow } from "./harness.js";

async function post(agent: https.Agent, url: string, token: string, ca: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, { method: "POST", agent, ca, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    request.on("error", reject);
    request.end(JSON.stringify(body));
  });
}

/** Device creation through the HTTPS API, and audit-chain verification. */
export default async function foundationBench(ctx: BenchContext): Promise<BenchRow[]> {
  const devices = ctx.quick ? 300 : 2000;
  const concurrency = 16;
  const config = loadConfig({ env: {}, flags: { dataDir: join(ctx.tmpDir, "data"), apiPort: 0, logLevel: "silent" } });
  const { app, adminToken } = await initialize(config, { trustDomain: "bench.moat", keyType: "ec-p256", hostnames: ["localhost", "127.0.0.1"] });
  const servers = await startServers(app, createLogger(config));
  const ca = await app.ca.chainPem();
  const agent = new https.Agent({ keepAlive: true, maxSockets: concurrency });
  let next = 0;
  ctx.log(`creating ${devices} devices through ${servers.apiUrl} with ${concurrency} clients`);
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < devices) {
        const i = next++;
        const status = await post(agent, `${servers.apiUrl}/v1/devices`, adminToken, ca, { id: `bench-${i}`, group: `g${i % 10}`, attributes: { n: String(i) } });
        if (status !== 201) throw new Error(`device creation answered ${status}`);
      }
    }),
  );
  const apiSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  await servers.close();

  // Reference: the same rows inserted straight into SQLite, one transaction per row (the API's durability).
  const raw = new Database(join(ctx.tmpDir, "raw.db"));
  raw.pragma("journal_mode = WAL");
  raw.pragma("synchronous = NORMAL");
  raw.exec("create table devices (id text primary key, name text, device_group text, role text, status text, attributes text, created_at text, updated_at text)");
  const insert = raw.prepare("insert into devices values (?, ?, ?, ?, ?, ?, ?, ?)");
  const rawStarted = process.hrtime.bigint();
  for (let i = 0; i < devices; i++) {
    const now = new Date().toISOString();
    raw.transaction(() => insert.run(`bench-${i}`, `bench-${i}`, `g${i % 10}`, "device", "pending", JSON.stringify({ n: String(i) }), now, now))();
  }
  const rawSeconds = Number(process.hrtime.bigint() - rawStarted) / 1e9;
  raw.close();

  // Audit verification: more events, then the chain check, beside sha256sum over the same canonical bytes.
  const extra = ctx.quick ? 2000 : 20000;
  ctx.log(`appending ${extra} more audit events`);
  for (let i = 0; i < extra; i += 500) {
    await app.store.transaction(async (tx) => {
      for (let j = i; j < Math.min(i + 500, extra); j++) await tx.events.append({ type: "bench.event", subject: `s${j}`, data: { j } });
    });
  }
  const verifyStarted = process.hrtime.bigint();
  const result = await app.audit.verify();
  const verifySeconds = Number(process.hrtime.bigint() - verifyStarted) / 1e9;
  if (!result.ok) throw new Error(`chain did not verify: ${result.problem}`);
  const dump = (await app.audit.list({ limit: 1000 })).map((e) => canonicalJson(e)).join("\n");
  const file = join(ctx.tmpDir, "events.txt");
  writeFileSync(file, dump.repeat(Math.ceil(result.entries / 1000)));
  const shaStarted = process.hrtime.bigint();
  execFileSync("sha256sum", [file]);
  const shaSeconds = Number(process.hrtime.bigint() - shaStarted) / 1e9;
  await app.close();

  return [
    {
      measure: `device creation through the HTTPS API (${concurrency} clients, SQLite)`,
      moat: devices / apiSeconds,
      reference: devices / rawSeconds,
      referenceName: "raw better-sqlite3 insert, 1 txn/row",
      unit: "devices/s",
      higherIsBetter: true,
      note: "API includes TLS, token check, validation, audit-chain append",
    },
    {
      measure: "audit-chain verification",
      moat: result.entries / verifySeconds,
      reference: result.entries / shaSeconds,
      referenceName: "sha256sum over the same event bytes",
      unit: "events/s",
      higherIsBetter: true,
      note: `${result.entries} events`,
    },
  ];
}
