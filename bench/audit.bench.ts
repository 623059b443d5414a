import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { sql } from "kysely";
import { AuditCheckpoints, AuditKeys, AuditService, entryHash } from "../src/audit/index.js";
import { Envelope, singleKekProvider, softwareKek } from "../src/keys/index.js";
import { AuditRepository, Store } from "../src/store/index.js";
import type { BenchContext, BenchRow } from "./harness.js";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The append as it was before the Merkle tree (head update, entry, head hash): the reference. */
async function chainOnlyAppend(store: Store, i: number): Promise<void> {
  await store.transaction(async ({ db }) => {
    const head = await db.updateTable("audit_head").set({ seq: sql`seq + 1` }).where("id", "=", 1).returning(["seq", "hash"]).executeTakeFirstOrThrow();
    const fields = { seq: Number(head.seq), time: new Date().toISOString(), type: "bench.event", severity: "info", actor: "bench", subject: `s${i}`, data: { i }, prevHash: head.hash };
    const hash = entryHash(fields);
    await db
      .insertInto("audit_events")
      .values({ seq: fields.seq, time: fields.time, type: fields.type, severity: fields.severity, actor: fields.actor, subject: fields.subject, data: JSON.stringify(fields.data), prev_hash: fields.prevHash, hash })
      .execute();
    await db.updateTable("audit_head").set({ hash }).where("id", "=", 1).execute();
  });
}

async function rate(count: number, append: (i: number) => Promise<void>): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await append(i);
  return count / (Number(process.hrtime.bigint() - started) / 1e9);
}

/**
 * What the Merkle tree costs an append (its subtree rows in the same transaction) against the chain
 * alone, interleaved on one disk; and how long a checkpoint and an inclusion proof take on a grown log.
 */
export default async function auditBench(ctx: BenchContext): Promise<BenchRow[]> {
  const rounds = 5;
  const perRound = ctx.quick ? 200 : 1000;
  const open = async (name: string) => {
    const store = await Store.open({ dataDir: join(ctx.tmpDir, name) });
    await store.migrate();
    return store;
  };
  const tree = await open("tree");
  const chain = await open("chain");
  const repo = new AuditRepository(tree.db, (fn) => tree.transaction((tx) => fn(tx.db)));
  const audit = new AuditService(repo);
  const withTree: number[] = [];
  const chainOnly: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      ctx.log(`round ${round + 1}/${rounds}: ${perRound} appends each way`);
      const runs = [async () => withTree.push(await rate(perRound, (i) => audit.emit({ type: "bench.event", actor: "bench", subject: `s${i}`, data: { i } }))), async () => chainOnly.push(await rate(perRound, (i) => chainOnlyAppend(chain, i)))];
      for (const run of round % 2 ? runs.reverse() : runs) await run();
    }
    const keys = new AuditKeys(repo.keys, new Envelope(singleKekProvider("bench", softwareKek(randomBytes(32), "bench"))), "bench.example/moat-audit");
    await keys.ensure();
    const checkpoints = new AuditCheckpoints(repo, keys, "bench.example/moat-audit");
    const size = rounds * perRound;
    let started = process.hrtime.bigint();
    await checkpoints.create();
    const checkpointMs = Number(process.hrtime.bigint() - started) / 1e6;
    const proofs = 200;
    started = process.hrtime.bigint();
    for (let i = 0; i < proofs; i++) await checkpoints.prove(1 + ((i * 7919) % size));
    const proveMs = Number(process.hrtime.bigint() - started) / 1e6 / proofs;
    const note = `median of ${rounds} interleaved rounds of ${perRound}; one commit each; SQLite, synchronous=FULL`;
    return [
      { measure: "audit append with Merkle subtrees", moat: median(withTree), reference: median(chainOnly), referenceName: "hash chain alone (the append before the tree)", unit: "commits/s", higherIsBetter: true, note },
      { measure: `sign a checkpoint (log of ${size})`, moat: checkpointMs, reference: null, unit: "ms", higherIsBetter: false, note: "root from O(log n) stored subtrees + Ed25519 signature + insert" },
      { measure: `inclusion proof (log of ${size})`, moat: proveMs, reference: null, unit: "ms", higherIsBetter: false, note: `mean of ${proofs}; one query for the path's subtrees` },
    ];
  } finally {
    await tree.close();
    await chain.close();
  }
}
