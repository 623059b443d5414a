import { createHash, randomBytes } from "node:crypto";
import { sql } from "kysely";
import { afterEach, beforeEach, expect, it } from "vitest";
import {
  AuditCheckpoints,
  AuditKeys,
  AuditService,
  auditOrigin,
  entryHash,
  GENESIS_HASH,
  MerkleBuilder,
  entryLeafHash,
  openCheckpoint,
  parseVerifierKey,
  verifyInclusionProof,
  type Checkpoint,
  type ChainEntry,
} from "../../src/audit/index.js";
import { isMoatError } from "../../src/errors.js";
import { Envelope, singleKekProvider, softwareKek } from "../../src/keys/index.js";
import { AuditRepository, type Store } from "../../src/store/index.js";
import { createTestDatabase, forEachDialect, type TestDatabase } from "../helpers/dialects.js";

const ORIGIN = auditOrigin("plant.example");

interface Log {
  store: Store;
  repo: AuditRepository;
  audit: AuditService;
  keys: AuditKeys;
  checkpoints: AuditCheckpoints;
}

function logOn(store: Store, envelope: Envelope): Log {
  const repo = new AuditRepository(store.db, (fn) => store.transaction((tx) => fn(tx.db)));
  const keys = new AuditKeys(repo.keys, envelope, ORIGIN);
  return { store, repo, audit: new AuditService(repo), keys, checkpoints: new AuditCheckpoints(repo, keys, ORIGIN) };
}

/*
 * The leaf bytes as docs/audit.md defines them, written here from the text rather than taken from
 * src/: tag, NUL, then JSON with sorted keys and no whitespace of the eight fields.
 */
function documentedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(documentedJson).join(",")}]`;
  if (value && typeof value === "object")
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${documentedJson((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(value);
}
const sha = (...parts: Buffer[]) => createHash("sha256").update(Buffer.concat(parts)).digest();
function documentedLeaf(e: ChainEntry): Buffer {
  const body = documentedJson([e.seq, e.time, e.type, e.severity, e.actor, e.subject, e.data, e.prevHash]);
  return sha(Buffer.from([0]), Buffer.from("moat-audit-v1\0", "latin1"), Buffer.from(body, "utf8"));
}
function documentedRoot(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return sha();
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha(Buffer.from([1]), documentedRoot(leaves.slice(0, k)), documentedRoot(leaves.slice(k)));
}

async function allEntries(repo: AuditRepository): Promise<ChainEntry[]> {
  return repo.scan(0, 100_000);
}

/** What an attacker with write access to the database does after editing: recompute every hash, the tree and the head. */
async function recomputeEverything(store: Store, repo: AuditRepository): Promise<void> {
  const entries = await allEntries(repo);
  let prev = GENESIS_HASH;
  const builder = new MerkleBuilder();
  await sql`delete from audit_tree`.execute(store.db);
  for (const e of entries) {
    const fixed = { ...e, prevHash: prev };
    const hash = entryHash(fixed);
    await sql`update audit_events set prev_hash = ${prev}, hash = ${hash} where seq = ${e.seq}`.execute(store.db);
    for (const n of builder.push(entryLeafHash(fixed))) await sql`insert into audit_tree (level, idx, hash) values (${n.level}, ${n.index}, ${n.hash.toString("hex")})`.execute(store.db);
    prev = hash;
  }
  await sql`update audit_head set seq = ${entries.length}, hash = ${prev} where id = 1`.execute(store.db);
}

forEachDialect("audit log as a Merkle tree with signed checkpoints", (dialect) => {
  let database: TestDatabase;
  let log: Log;
  let exported: { note: string; key: string };
  let checkpoint: Checkpoint;
  const envelope = new Envelope(singleKekProvider("test", softwareKek(randomBytes(32), "test")));

  beforeEach(async () => {
    database = await createTestDatabase(dialect);
    log = logOn(await database.openStore(), envelope);
    expect(await log.keys.ensure()).toMatchObject({ created: true });
    for (let i = 1; i <= 11; i++) await log.audit.emit({ type: "test.event", subject: `s${i}`, data: { i, nested: { b: 1, a: [true, null, "x"] } } });
    const record = await log.checkpoints.create();
    exported = { note: record.note, key: await log.keys.verifierKey() };
    checkpoint = openCheckpoint(exported.note, parseVerifierKey(exported.key), ORIGIN);
    for (let i = 12; i <= 15; i++) await log.audit.emit({ type: "test.event", subject: `s${i}` });
  });
  afterEach(async () => {
    await log.store.close();
    await database.cleanup();
  });

  const verifyAgainstExport = () => log.audit.verify({ checkpoint });

  it("signs checkpoints whose root another implementation of the documented leaf bytes reproduces", async () => {
    expect(checkpoint.size).toBe(11);
    const entries = await allEntries(log.repo);
    expect(checkpoint.rootHash).toEqual(documentedRoot(entries.slice(0, 11).map(documentedLeaf)));
    const result = await verifyAgainstExport();
    expect(result).toMatchObject({ ok: true, entries: 15, problems: [], checkpoint: { size: 11 } });
    expect(result.rootHash).toBe(documentedRoot(entries.map(documentedLeaf)).toString("hex"));
    // An unchanged log keeps its checkpoint; a grown one gets a new one that extends it.
    const next = await log.checkpoints.create();
    expect(next.size).toBe(15);
    expect((await log.checkpoints.create()).note).toBe(next.note);
  });

  it("proves inclusion of an entry, checked offline with the exported key, and refuses a forged proof", async () => {
    const proof = JSON.parse(JSON.stringify(await log.checkpoints.prove(3)));
    expect(proof).toMatchObject({ seq: 3, index: 2, treeSize: 11 });
    expect(Buffer.from(proof.leafHash, "hex")).toEqual(documentedLeaf(proof.entry));
    expect(verifyInclusionProof(proof, parseVerifierKey(exported.key)).size).toBe(11);
    const forged = { ...proof, entry: { ...proof.entry, actor: "mallory" } };
    expect(() => verifyInclusionProof(forged, parseVerifierKey(exported.key))).toThrow(expect.objectContaining({ code: "AUDIT_PROOF_INVALID" }));
    const badPath = { ...proof, path: [...proof.path.slice(1), proof.path[0]] };
    expect(() => verifyInclusionProof(badPath, parseVerifierKey(exported.key))).toThrow(expect.objectContaining({ code: "AUDIT_PROOF_INVALID" }));
    // An entry after the latest checkpoint gets a fresh one.
    expect((await log.checkpoints.prove(14)).treeSize).toBe(15);
    await expect(log.checkpoints.prove(99)).rejects.toSatisfy((e) => isMoatError(e, "AUDIT_ENTRY_NOT_FOUND"));
  });

  // Two connections in one process cannot wait for SQLite's write lock (it blocks the event loop); the CLI test races real processes on SQLite.
  const onPostgres = dialect === "postgres" ? it : () => undefined;
  onPostgres("serialises appends from two connections into one tree", async () => {
    const other = logOn(await database.openStore(), envelope);
    try {
      await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? log : other).audit.emit({ type: "race", subject: `r${i}` })));
    } finally {
      await other.store.close();
    }
    expect(await verifyAgainstExport()).toMatchObject({ ok: true, entries: 45, problems: [] });
    expect((await log.checkpoints.create()).size).toBe(45);
  });

  it("detects a deleted tail with the head fixed, even when the subtrees are cleaned up too", async () => {
    await sql`delete from audit_events where seq > 8`.execute(log.store.db);
    await recomputeEverything(log.store, log.repo);
    // Internally consistent again: without an outside reference this cannot be told apart from a short log.
    expect(await log.audit.verify()).toMatchObject({ ok: true, entries: 8 });
    const result = await verifyAgainstExport();
    expect(result).toMatchObject({ ok: false, code: "AUDIT_LOG_TRUNCATED", entries: 8 });
    // The stored checkpoint keeps the key from signing the shortened log.
    await expect(log.checkpoints.create()).rejects.toSatisfy((e) => isMoatError(e, "AUDIT_LOG_TRUNCATED"));
  });

  it("detects an edit whose hashes, subtrees and head were all recomputed", async () => {
    await sql`update audit_events set actor = 'mallory' where seq = 3`.execute(log.store.db);
    expect(await log.audit.verify()).toMatchObject({ ok: false, code: "AUDIT_CHAIN_BROKEN", firstBadSeq: 3 });
    await recomputeEverything(log.store, log.repo);
    expect(await log.audit.verify()).toMatchObject({ ok: true });
    expect(await verifyAgainstExport()).toMatchObject({ ok: false, code: "AUDIT_LOG_REWRITTEN" });
    await expect(log.checkpoints.create()).rejects.toSatisfy((e) => isMoatError(e, "AUDIT_LOG_REWRITTEN"));
    // Deleting the stored checkpoints lets the key sign the forgery, but the exported one still refutes it.
    await sql`delete from audit_checkpoints`.execute(log.store.db);
    const forged = await log.checkpoints.create();
    expect(forged.size).toBe(15);
    expect(await verifyAgainstExport()).toMatchObject({ ok: false, code: "AUDIT_LOG_REWRITTEN" });
  });

  it("detects everything deleted and the head reset", async () => {
    await sql`delete from audit_events`.execute(log.store.db);
    await sql`delete from audit_tree`.execute(log.store.db);
    await sql`update audit_head set seq = 0, hash = ${GENESIS_HASH} where id = 1`.execute(log.store.db);
    expect(await log.audit.verify()).toMatchObject({ ok: true, entries: 0 });
    expect(await verifyAgainstExport()).toMatchObject({ ok: false, code: "AUDIT_LOG_TRUNCATED", entries: 0 });
  });

  it("reports a deleted head row with a code, and refuses to append or sign without writing anything", async () => {
    await sql`delete from audit_head`.execute(log.store.db);
    const result = await verifyAgainstExport();
    expect(result).toMatchObject({ ok: false, code: "AUDIT_HEAD_MISSING", entries: 15 });
    await expect(log.audit.emit({ type: "after.tamper" })).rejects.toSatisfy((e) => isMoatError(e, "AUDIT_HEAD_MISSING"));
    await expect(log.checkpoints.create()).rejects.toSatisfy((e) => isMoatError(e, "AUDIT_HEAD_MISSING"));
    expect((await allEntries(log.repo)).length).toBe(15);
  });

  it("detects stored subtrees that disagree with the entries", async () => {
    await sql`update audit_tree set hash = ${"00".repeat(32)} where level = 0 and idx = 13`.execute(log.store.db);
    expect(await verifyAgainstExport()).toMatchObject({ ok: false, code: "AUDIT_TREE_MISMATCH" });
    await sql`delete from audit_tree where level = 1`.execute(log.store.db);
    expect(await log.audit.verify()).toMatchObject({ ok: false, code: "AUDIT_TREE_MISMATCH" });
  });

  it("refuses a checkpoint signed by another key or for another log", async () => {
    const stranger = logOn(log.store, envelope);
    // A second key under another id is not possible, so sign with a fresh key of the test's own.
    const { generateKeyPairSync, sign } = await import("node:crypto");
    const pair = generateKeyPairSync("ed25519");
    const raw = Buffer.from(pair.publicKey.export({ format: "jwk" }).x!, "base64url");
    const { signCheckpoint, formatVerifierKey } = await import("../../src/audit/index.js");
    const note = await signCheckpoint({ origin: ORIGIN, size: 11, rootHash: checkpoint.rootHash }, { name: ORIGIN, publicKey: raw, sign: async (m) => sign(null, m, pair.privateKey) });
    expect(() => openCheckpoint(note, parseVerifierKey(exported.key), ORIGIN)).toThrow(expect.objectContaining({ code: "AUDIT_SIGNATURE_INVALID" }));
    expect(() => openCheckpoint(note, parseVerifierKey(formatVerifierKey(ORIGIN, raw)), "other.example/moat-audit")).toThrow(expect.objectContaining({ code: "AUDIT_CHECKPOINT_FOREIGN" }));
    expect(stranger.checkpoints.origin).toBe(ORIGIN);
  });

  it("keeps the audit key sealed under the KEK and creates it once", async () => {
    const row = await log.store.db.selectFrom("audit_keys").selectAll().executeTakeFirstOrThrow();
    expect(row.location).toBeNull();
    expect(Buffer.from(row.sealed_private_key!).subarray(0, 3).toString()).toBe("MEV");
    expect(await log.keys.ensure()).toMatchObject({ created: false });
    const wrongKek = logOn(log.store, new Envelope(singleKekProvider("test", softwareKek(randomBytes(32), "other"))));
    await expect(wrongKek.keys.signer()).rejects.toSatisfy((e) => isMoatError(e));
  });
});
