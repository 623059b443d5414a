/**
 * Posture and compliance at fleet size: a full posture run over 100,000 devices and 200,000
 * certificates, re-evaluation after one change, and a compliance report, on SQLite and PostgreSQL.
 *
 * Fixtures are bulk-inserted rows: one real certificate issued by the installation's CA is the
 * template, and each row gets its own public-key bytes (so every device has a distinct key, as in a
 * real fleet). Posture parses keys and hashes SPKIs but does not verify signatures, so the varied
 * bytes cost what real certificates would. 1 % of devices hold a certificate expiring within the
 * window, 20 devices share one key, 500 sessions are live.
 * The reference in each row is a plain scan of the same rows (devices, then certificate DER, page by
 * page) in the same run: the ratio is how much the checks cost over reading the data.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { loadConfig } from "../src/config/index.js";
import { initialize, type App } from "../src/core.js";
import { children, readSingle } from "../src/crypto/index.js";
import type { BenchContext, BenchRow } from "./harness.js";

const PG_URL = process.env.MOAT_TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const DAY = 86_400_000;

async function postgresSchema(): Promise<{ url: string; drop: () => Promise<void> } | null> {
  const schema = `bench_${randomBytes(5).toString("hex")}`;
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query(`create schema ${schema}`);
  } catch {
    await client.end().catch(() => undefined);
    return null;
  }
  await client.end();
  return {
    url: `${PG_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`drop schema if exists ${schema} cascade`);
      await c.end();
    },
  };
}

/** Offset of the last 4 bytes of the SPKI's key bits inside the template DER (patched per row). */
function keyBytesOffset(der: Buffer): number {
  const [tbs] = children(readSingle(der, 0x30));
  const fields = children(tbs!);
  const spki = fields[fields[0]?.tag === 0xa0 ? 6 : 5]!;
  return spki.encoded.byteOffset - der.byteOffset + spki.encoded.length - 4;
}

async function fill(ctx: BenchContext, app: App, devices: number): Promise<{ template: Buffer }> {
  const db = app.store.db;
  await app.devices.create({ id: "template-device" }, "bench");
  const issued = await app.pki.certificates.issueWithGeneratedKey({ deviceId: "template-device", actor: "bench" });
  const template = (await db.selectFrom("certificates").select("certificate_der").where("serial", "=", issued.serialHex).executeTakeFirstOrThrow()).certificate_der;
  const issuer = (await app.ca.active("issuing")).serialHex;
  const offset = keyBytesOffset(Buffer.from(template));
  const now = Date.now();
  const iso = (ms: number) => new Date(ms).toISOString();
  const batch = 500;
  const started = Date.now();
  for (let from = 0; from < devices; from += batch) {
    const ids = Array.from({ length: Math.min(batch, devices - from) }, (_, i) => from + i);
    await app.store.transaction(async (tx) => {
      await tx.db
        .insertInto("devices")
        .values(ids.map((i) => ({ id: `dev-${String(i).padStart(6, "0")}`, name: "", device_group: `g${i % 20}`, role: "device", status: "active", attributes: "{}", created_at: iso(now - 30 * DAY), updated_at: iso(now - 30 * DAY), last_seen_at: iso(now - (i % 100) * 60_000), last_seen_address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}` })))
        .execute();
      const certs = ids.flatMap((i) =>
        [0, 1].map((generation) => {
          const der = Buffer.from(template);
          // 20 devices share one key; every other certificate has its own.
          der.writeUInt32BE(i < 20 ? 0xfffffff0 + generation : i * 2 + generation, offset);
          const expiring = i % 100 === 7 && generation === 1;
          return {
            serial: `${(i * 2 + generation + 1).toString(16).padStart(16, "0")}ab`,
            device_id: `dev-${String(i).padStart(6, "0")}`,
            issuer_serial: issuer,
            subject: `CN=dev-${i}`,
            fingerprint: "00",
            key_kind: "ec-p256",
            not_before: iso(now - (generation ? 10 : 100) * DAY),
            not_after: iso(now + (expiring ? 5 : generation ? 80 : -10) * DAY),
            status: "active",
            revoked_at: null,
            revocation_reason: null,
            superseded_by: null,
            revoke_after: null,
            expiry_notified_at: null,
            created_at: iso(now),
            certificate_der: der,
          };
        }),
      );
      await tx.db.insertInto("certificates").values(certs).execute();
    });
    if ((from / batch) % 40 === 0) ctx.log(`  ${from + ids.length}/${devices} devices with 2 certificates each (${Math.round((Date.now() - started) / 1000)} s)`);
  }
  // 500 live sessions on one node.
  const at = iso(now);
  await db.insertInto("mqtt_nodes").values({ node_id: "bench-node", started_at: at, heartbeat_at: at }).execute();
  for (let from = 0; from < 500; from += 250)
    await db
      .insertInto("mqtt_sessions")
      .values(Array.from({ length: 250 }, (_, k) => from + k).map((i) => ({ session_id: `s-${i}`, device_id: `dev-${String(i).padStart(6, "0")}`, client_id: `dev-${String(i).padStart(6, "0")}`, node_id: "bench-node", address: "10.0.0.1", listener: "tls", method: "mtls", cert_serial: `${(i * 2 + 2).toString(16).padStart(16, "0")}ab`, credential_id: null, connected_at: at })))
      .execute();
  return { template };
}

/** The reference: read every device and every certificate's DER once, page by page, and do nothing else. */
async function plainScan(app: App): Promise<number> {
  const started = performance.now();
  let bytes = 0;
  for (let after = ""; ; ) {
    const rows = await app.store.db.selectFrom("devices").select(["id", "status", "device_group", "last_seen_at"]).where("id", ">", after).orderBy("id").limit(5000).execute();
    if (rows.length < 5000) break;
    after = rows.at(-1)!.id;
  }
  for (let after = ""; ; ) {
    const rows = await app.store.db.selectFrom("certificates").select(["serial", "certificate_der"]).where("serial", ">", after).orderBy("serial").limit(5000).execute();
    for (const r of rows) bytes += r.certificate_der.length;
    if (rows.length < 5000) break;
    after = rows.at(-1)!.serial;
  }
  if (bytes === 0) throw new Error("no certificate bytes were read");
  return (performance.now() - started) / 1000;
}

async function measure(ctx: BenchContext, dialect: "sqlite" | "postgres", devices: number): Promise<BenchRow[]> {
  const pgSchema = dialect === "postgres" ? await postgresSchema() : null;
  if (dialect === "postgres" && !pgSchema) {
    ctx.log("PostgreSQL does not answer: skipped");
    return [];
  }
  const dataDir = join(ctx.tmpDir, `posture-${dialect}`);
  mkdirSync(dataDir, { recursive: true });
  const config = loadConfig({ env: {}, flags: { dataDir, databaseUrl: pgSchema?.url, logLevel: "silent", "compliance.supportPeriodEnd": "2031-12-31" } as never });
  const { app } = await initialize(config, { trustDomain: "bench.moat", keyType: "ec-p256", hostnames: ["localhost"] });
  try {
    ctx.log(`${dialect}: inserting ${devices} devices and ${devices * 2} certificates`);
    const fillStarted = Date.now();
    await fill(ctx, app, devices);
    const fillSeconds = (Date.now() - fillStarted) / 1000;
    const reference = await plainScan(app);
    ctx.log(`${dialect}: full posture run`);
    const started = performance.now();
    const run = await app.posture.run({ actor: "bench" });
    const full = (performance.now() - started) / 1000;
    const reference2 = await plainScan(app);
    const findings = run.findings.length;
    ctx.log(`${dialect}: ${findings} findings (${JSON.stringify(run.counts)}) in ${full.toFixed(1)} s; plain scan ${reference.toFixed(1)}/${reference2.toFixed(1)} s`);

    // One change: a connected device's certificate is revoked; its checks are re-evaluated from the run's index.
    const serial = `${(5 * 2 + 2).toString(16).padStart(16, "0")}ab`;
    await app.pki.certificates.revoke(serial, "keyCompromise", "bench");
    // The node holding the sessions is alive (a recorder would have beaten meanwhile).
    await app.store.db.updateTable("mqtt_nodes").set({ heartbeat_at: new Date().toISOString() }).execute();
    const reStarted = performance.now();
    const refound = await app.posture.reevaluateDevice("dev-000005");
    const reevaluate = (performance.now() - reStarted) / 1000;
    if (!refound?.some((f) => f.check === "revoked-certificate-connected")) throw new Error("re-evaluation missed the revoked, connected certificate");

    const reportStarted = performance.now();
    const { report } = await app.compliance.report({ standard: "etsi-en-303-645", actor: "bench" });
    const reportSeconds = (performance.now() - reportStarted) / 1000;
    const singleStarted = performance.now();
    await app.store.db.selectFrom("devices").selectAll().where("id", "=", "dev-000005").execute();
    await app.store.db.selectFrom("certificates").selectAll().where("device_id", "=", "dev-000005").execute();
    const single = (performance.now() - singleStarted) / 1000;
    const note = `${devices} devices, ${devices * 2} certificates, 500 live sessions; ${findings} findings; fixture insert ${fillSeconds.toFixed(0)} s`;
    return [
      { measure: `posture: full run, ${dialect}`, moat: full, reference: Math.min(reference, reference2), referenceName: "plain scan of the same rows", unit: "s", higherIsBetter: false, goal: "<= 60 s", note },
      { measure: `posture: re-evaluate after one revocation, ${dialect}`, moat: reevaluate, reference: single, referenceName: "reading that device's rows", unit: "s", higherIsBetter: false, goal: "<= 1 s", note: "index of the full run in memory" },
      { measure: `compliance: ETSI report over the run, ${dialect}`, moat: reportSeconds, reference: null, unit: "s", higherIsBetter: false, goal: "<= 10 s", note: `signed JSON, ${report.controls.length} controls, score ${report.score.percent}%` },
    ];
  } finally {
    await app.close();
    await pgSchema?.drop();
  }
}

export default async function postureBench(ctx: BenchContext): Promise<BenchRow[]> {
  const devices = ctx.quick ? 10_000 : 100_000;
  return [...(await measure(ctx, "sqlite", devices)), ...(await measure(ctx, "postgres", devices))];
}
