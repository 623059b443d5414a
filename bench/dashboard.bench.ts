/**
 * The dashboard's API calls at 100,000 devices: what the fleet view asks for (fleet summary, certificate
 * summary, firmware summary, the first devices page) must take under 1 s of server time together, and
 * what a device page asks for under 200 ms. Measured with inject (server time: routing, auth, the
 * queries and serialization, no TLS) over a SQLite installation filled by bulk insert, median of runs.
 * Reference in the same run: a plain `select count(*) from devices` over the same file, the floor any
 * count over the fleet pays.
 */
import { join } from "node:path";
import { buildApi } from "../src/api/index.js";
import { loadConfig } from "../src/config/index.js";
import { initialize } from "../src/core.js";
import type { BenchContext, BenchRow } from "./harness.js";

const median = (values: number[]) => values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export default async function dashboardBench(ctx: BenchContext): Promise<BenchRow[]> {
  const devices = ctx.quick ? 10_000 : 100_000;
  const runs = ctx.quick ? 3 : 7;
  const config = loadConfig({ env: {}, flags: { dataDir: join(ctx.tmpDir, "data"), logLevel: "silent" } });
  const { app, adminToken } = await initialize(config, { trustDomain: "bench.moat", keyType: "ec-p256", hostnames: ["localhost"] });
  try {
    ctx.log(`bulk-inserting ${devices} devices, certificates for a tenth, firmware reports for half`);
    const db = app.store.db;
    const now = Date.now();
    const iso = (ms: number) => new Date(ms).toISOString();
    const statuses = ["active", "active", "active", "pending", "suspended", "quarantined"];
    const issuer = (await app.ca.active("issuing")).serialHex;
    for (let start = 0; start < devices; start += 5_000) {
      const batch = Array.from({ length: Math.min(5_000, devices - start) }, (_, k) => start + k);
      await db.transaction().execute(async (tx) => {
        for (let i = 0; i < batch.length; i += 500) {
          const rows = batch.slice(i, i + 500).map((n) => ({
            id: `dev-${String(n).padStart(6, "0")}`,
            name: `device ${n}`,
            device_group: `group-${n % 40}`,
            role: "device",
            status: statuses[n % statuses.length]!,
            attributes: "{}",
            created_at: iso(now),
            updated_at: iso(now),
            last_seen_at: iso(now - (n % 3600) * 1000),
            last_seen_address: `10.0.${(n >> 8) & 255}.${n & 255}`,
          }));
          await tx.insertInto("devices").values(rows as never).execute();
          const certs = batch.slice(i, i + 500).filter((n) => n % 10 === 0);
          if (certs.length)
            await tx
              .insertInto("certificates")
              .values(
                certs.map((n) => ({
                  serial: n.toString(16).padStart(32, "0"),
                  device_id: `dev-${String(n).padStart(6, "0")}`,
                  issuer_serial: issuer,
                  subject: `CN=dev-${n}`,
                  fingerprint: n.toString(16).padStart(64, "0"),
                  key_kind: "ec-p256",
                  not_before: iso(now - 86_400_000),
                  not_after: iso(now + ((n / 10) % 60) * 86_400_000 + 3_600_000),
                  status: n % 70 === 0 ? "revoked" : "active",
                  revoked_at: n % 70 === 0 ? iso(now) : null,
                  revocation_reason: n % 70 === 0 ? "unspecified" : null,
                  superseded_by: null,
                  revoke_after: null,
                  expiry_notified_at: null,
                  created_at: iso(now),
                  // Placeholder bytes: the summary and list routes never parse them (a certificate page would).
                  certificate_der: Buffer.from([0x30, 0x00]),
                })) as never,
              )
              .execute();
          const reports = batch.slice(i, i + 500).filter((n) => n % 2 === 0);
          await tx
            .insertInto("firmware_inventory")
            .values(reports.map((n) => ({ device_id: `dev-${String(n).padStart(6, "0")}`, version: `1.${n % 5}.0`, security_version: n % 5, reported_at: iso(now), source: "ota" })) as never)
            .execute();
        }
      });
    }
    const api = await buildApi(app, { bodyLimitBytes: 65_536, authFailureLimit: 1_000_000, authFailureWindowSeconds: 60 });
    const headers = { authorization: `Bearer ${adminToken}` };
    const get = async (url: string) => {
      const response = await api.inject({ url, headers });
      if (response.statusCode !== 200) throw new Error(`${url} answered ${response.statusCode}: ${response.body.slice(0, 200)}`);
      return response;
    };
    const fleetCalls = ["/v1/dashboard/fleet", "/v1/dashboard/certificates", "/v1/dashboard/firmware", "/v1/devices?limit=50"];
    // A device with a certificate (every tenth has one), in the middle of the id range.
    const device = `dev-${String(Math.floor(devices / 20) * 10).padStart(6, "0")}`;
    const deviceCalls = [
      `/v1/devices/${device}`,
      `/v1/sessions?device=${device}&limit=10`,
      `/v1/certificates?deviceId=${device}&limit=50`,
      `/v1/devices/${device}/credentials`,
      `/v1/audit/events?subject=${device}&limit=20`,
      `/v1/devices/${device}/firmware`,
    ];
    // The views issue their calls concurrently; time the whole set, as the browser waits for it.
    const timeSet = async (urls: string[]) => {
      const started = process.hrtime.bigint();
      await Promise.all(urls.map(get));
      return Number(process.hrtime.bigint() - started) / 1e6;
    };
    await timeSet(fleetCalls);
    await timeSet(deviceCalls);
    const fleet: number[] = [];
    const page: number[] = [];
    const searches: number[] = [];
    const counts: number[] = [];
    const raw = app.store.db;
    for (let r = 0; r < runs; r++) {
      fleet.push(await timeSet(fleetCalls));
      page.push(await timeSet(deviceCalls));
      searches.push(await timeSet([`/v1/devices?limit=50&search=device%2099&after=dev-010000`]));
      const started = process.hrtime.bigint();
      await raw.selectFrom("devices").select((eb) => eb.fn.countAll().as("n")).executeTakeFirst();
      counts.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    const summary = (await get("/v1/dashboard/fleet")).json() as { total: number };
    if (summary.total !== devices) throw new Error(`fleet summary counted ${summary.total} devices, expected ${devices}`);
    await api.close();
    const note = `${devices} devices (SQLite), median of ${runs}; calls of a view concurrent, through inject (no TLS)`;
    return [
      { measure: `dashboard fleet view API calls (${fleetCalls.length})`, moat: median(fleet), reference: median(counts), referenceName: "select count(*) from devices", unit: "ms", higherIsBetter: false, goal: "< 1000 ms", note },
      { measure: `dashboard device page API calls (${deviceCalls.length})`, moat: median(page), reference: null, unit: "ms", higherIsBetter: false, goal: "< 200 ms", note },
      { measure: "dashboard device search page (substring, keyset)", moat: median(searches), reference: null, unit: "ms", higherIsBetter: false, note },
    ];
  } finally {
    await app.close();
  }
}
