import { join } from "node:path";
import { DeviceService } from "../src/identity/index.js";
import { isDeviceRoleIn } from "../src/policy/index.js";
import { identityStore, policyStore, Store } from "../src/store/index.js";
import type { BenchContext, BenchRow } from "./harness.js";

type Durability = "full" | "normal";

async function openStore(ctx: BenchContext, durability: Durability): Promise<Store> {
  const store = await Store.open({ dataDir: join(ctx.tmpDir, durability), sqliteSynchronous: durability });
  await store.migrate();
  return store;
}

/** Commits per second: one audit event per transaction, as unrelated requests write them. */
async function auditAppends(store: Store, count: number, offset: number): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await store.transaction(async (tx) => tx.events.append({ type: "bench.event", subject: `s${offset + i}`, data: { i } }));
  return count / (Number(process.hrtime.bigint() - started) / 1e9);
}

/** Devices created per second through the identity service (device row, feed row and audit event per commit). */
async function deviceCreations(store: Store, count: number, offset: number): Promise<number> {
  const devices = new DeviceService(identityStore(store), (role) => isDeviceRoleIn(policyStore(store).roles, role));
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await devices.create({ id: `bench-${offset + i}`, group: `g${i % 10}` }, "bench");
  return count / (Number(process.hrtime.bigint() - started) / 1e9);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * The price of SQLite durability: the store syncs the WAL on every commit (synchronous=FULL) so that an
 * acknowledged write survives a power loss. Measured against NORMAL (which may lose the last commits)
 * on the same disk, interleaved in rounds so both see the same machine load.
 */
export default async function storeBench(ctx: BenchContext): Promise<BenchRow[]> {
  const rounds = 5;
  const perRound = ctx.quick ? 200 : 1000;
  const stores: Record<Durability, Store> = { full: await openStore(ctx, "full"), normal: await openStore(ctx, "normal") };
  const audit: Record<Durability, number[]> = { full: [], normal: [] };
  const devices: Record<Durability, number[]> = { full: [], normal: [] };
  try {
    for (let round = 0; round < rounds; round++) {
      ctx.log(`round ${round + 1}/${rounds}: ${perRound} audit appends and ${perRound} device creations per mode`);
      for (const mode of round % 2 ? (["normal", "full"] as const) : (["full", "normal"] as const)) {
        audit[mode].push(await auditAppends(stores[mode], perRound, round * perRound));
        devices[mode].push(await deviceCreations(stores[mode], perRound, round * perRound));
      }
    }
  } finally {
    await stores.full.close();
    await stores.normal.close();
  }
  const note = `median of ${rounds} interleaved rounds of ${perRound}; one commit each; WAL mode`;
  return [
    { measure: "SQLite audit append, synchronous=FULL (default)", moat: median(audit.full), reference: median(audit.normal), referenceName: "same with synchronous=NORMAL", unit: "commits/s", higherIsBetter: true, note },
    { measure: "SQLite device creation, synchronous=FULL (default)", moat: median(devices.full), reference: median(devices.normal), referenceName: "same with synchronous=NORMAL", unit: "devices/s", higherIsBetter: true, note },
  ];
}
