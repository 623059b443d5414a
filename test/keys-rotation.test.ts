import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { join } from "node:path";
import { sql } from "kysely";
import { afterAll, beforeAll, expect, it } from "vitest";
import { isMoatError } from "../src/errors.js";
import { Envelope, KEK_FILE, KekRotation, createKekFile, envKekProvider, fileKekProvider, type RotationState, type RotationStateStore } from "../src/keys/index.js";
import { KyselySealedBlobStore, MetaRepository, type Store } from "../src/store/index.js";
import { createTestDatabase, forEachDialect, type TestDatabase } from "./helpers/dialects.js";

const SECRETS = 300;

function metaState(meta: MetaRepository): RotationStateStore {
  return {
    load: async () => {
      const text = await meta.get("kek_rotation");
      return text ? (JSON.parse(text) as RotationState) : null;
    },
    save: (state) => meta.set("kek_rotation", state ? JSON.stringify(state) : ""),
  };
}

forEachDialect("KEK rotation over the store", (dialect) => {
  let database: TestDatabase;
  let store: Store;
  let envelope: Envelope;
  const plaintexts = new Map<number, Buffer>();

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    store = await database.openStore();
    createKekFile(database.dataDir);
    envelope = new Envelope(fileKekProvider(database.dataDir));
    // A table of this test's own: rotation finds envelopes by their magic, in any table.
    const blob = dialect === "sqlite" ? "blob" : "bytea";
    await sql`create table test_secrets (id integer primary key, purpose text not null, sealed ${sql.raw(blob)} not null)`.execute(store.db);
    for (let id = 1; id <= SECRETS; id++) {
      const secret = randomBytes(32);
      plaintexts.set(id, secret);
      await sql`insert into test_secrets (id, purpose, sealed) values (${id}, ${"device-secret:" + id}, ${await envelope.seal(secret, `device-secret:${id}`)})`.execute(store.db);
    }
    // And one base64 envelope in a text column, as the KEK check value is kept.
    await new MetaRepository(store.db).set("kek_check", (await envelope.seal(Buffer.from("check"), "meta:kek-check")).toString("base64"));
  });

  afterAll(async () => {
    await store?.close();
    await database?.cleanup();
  });

  async function readAll(env: Envelope): Promise<number> {
    const rows = await sql<{ id: number; sealed: Uint8Array }>`select id, sealed from test_secrets order by id`.execute(store.db);
    for (const row of rows.rows) expect((await env.open(Buffer.from(row.sealed), `device-secret:${row.id}`)).equals(plaintexts.get(Number(row.id))!)).toBe(true);
    return rows.rows.length;
  }

  it("rewraps every data key while readers keep opening every secret, then retires the unused version", async () => {
    const rotation = new KekRotation(envelope, new KyselySealedBlobStore(store.db, store.dialect), metaState(new MetaRepository(store.db)));
    const before = await rotation.status();
    expect(before.versions).toEqual([expect.objectContaining({ version: 1, current: true, envelopes: SECRETS + 1 })]);

    // A second reader with its own provider instance, like a running `moat serve`.
    const serveEnvelope = new Envelope(fileKekProvider(database.dataDir));
    let reads = 0;
    let failures = 0;
    let rotating = true;
    const reader = (async () => {
      while (rotating) {
        try {
          reads += await readAll(serveEnvelope);
        } catch (error) {
          failures += 1;
          throw error;
        }
      }
    })();
    const report = await rotation.rotate();
    rotating = false;
    await reader;
    expect(failures).toBe(0);
    expect(reads).toBeGreaterThan(0);
    expect(report).toMatchObject({ created: true, rewrapped: SECRETS + 1, remaining: 0, skipped: [] });
    expect(report.target.version).toBe(2);

    const after = await rotation.status();
    expect(after.versions.map((v) => [v.version, v.current, v.envelopes])).toEqual([
      [1, false, 0],
      [2, true, SECRETS + 1],
    ]);
    expect(after.rotation).toBeNull();
    expect(statSync(join(database.dataDir, KEK_FILE)).mode & 0o777).toBe(0o600);

    expect(await rotation.retireUnused()).toEqual([1]);
    expect((await rotation.status()).versions.map((v) => v.version)).toEqual([2]);
    // Everything still opens with a fresh provider that only knows v2, including the base64 check value.
    const fresh = new Envelope(fileKekProvider(database.dataDir));
    expect(await readAll(fresh)).toBe(SECRETS);
    const check = await new MetaRepository(store.db).get("kek_check");
    expect((await fresh.open(Buffer.from(check!, "base64"), "meta:kek-check")).toString()).toBe("check");
  });

  it("refuses to retire a version still in use, and resumes an interrupted rotation instead of starting another", async () => {
    const meta = new MetaRepository(store.db);
    const blobs = new KyselySealedBlobStore(store.db, store.dialect);
    const provider = envelope.kekProvider;
    // Simulate a run that created v3 and died after rewrapping only part of the rows.
    const v3 = await provider.createVersion!();
    const rows = await sql<{ id: number; sealed: Uint8Array }>`select id, sealed from test_secrets where id <= 10`.execute(store.db);
    for (const row of rows.rows) await sql`update test_secrets set sealed = ${await envelope.rewrap(Buffer.from(row.sealed), v3)} where id = ${row.id}`.execute(store.db);
    await meta.set("kek_rotation", JSON.stringify({ targetId: v3.id, targetVersion: 3, startedAt: new Date().toISOString(), owner: "pid 999999", leaseUntil: new Date(Date.now() + 60_000).toISOString() } satisfies RotationState));

    const other = new KekRotation(envelope, blobs, metaState(meta), () => {}, "pid 1");
    await expect(other.rotate()).rejects.toSatisfy((e) => isMoatError(e, "KEK_ROTATION_IN_PROGRESS"));
    await expect(other.retireUnused(2)).rejects.toSatisfy((e) => isMoatError(e, "KEK_ROTATION_IN_PROGRESS"));
    // The lease lapses (the process died); the next run resumes onto v3 rather than creating v4.
    await meta.set("kek_rotation", JSON.stringify({ ...JSON.parse((await meta.get("kek_rotation"))!), leaseUntil: new Date(Date.now() - 1000).toISOString() }));
    const mid = await other.status();
    expect(mid.versions.find((v) => v.version === 2)!.envelopes).toBe(SECRETS + 1 - 10);
    const report = await other.rotate();
    expect(report).toMatchObject({ resumed: true, created: false, rewrapped: SECRETS + 1 - 10, remaining: 0 });
    expect(report.target.version).toBe(3);
    expect((await other.status()).versions.map((v) => v.version)).toEqual([2, 3]);
    await expect(readAll(new Envelope(fileKekProvider(database.dataDir)))).resolves.toBe(SECRETS);
    // v2 is unused now; v3 (current) can never be retired.
    await expect(other.retireUnused(3)).rejects.toSatisfy((e) => isMoatError(e, "KEK_VERSION_IN_USE"));
    expect(await other.retireUnused(2)).toEqual([2]);
  });

  it("refuses to retire a version that still wraps data keys", async () => {
    const meta = new MetaRepository(store.db);
    const rotation = new KekRotation(envelope, new KyselySealedBlobStore(store.db, store.dialect), metaState(meta));
    const v4 = await envelope.kekProvider.createVersion!();
    expect(v4.version).toBe(4);
    // Nothing rewrapped yet: v3 still wraps everything.
    await expect(rotation.retireUnused(3)).rejects.toSatisfy((e) => isMoatError(e, "KEK_VERSION_IN_USE"));
    expect((await rotation.status()).versions.map((v) => v.version)).toEqual([3, 4]);
  });
});

it("the env provider holds several versions but cannot create them (managed outside Moat)", async () => {
  const v1 = randomBytes(32).toString("base64");
  const v2 = randomBytes(32).toString("base64");
  const old = new Envelope(envKekProvider(v1));
  const sealed = await old.seal(Buffer.from("s"), "x");
  const both = new Envelope(envKekProvider(`v1:${v1},v2:${v2}`));
  expect((await both.kekProvider.current()).version).toBe(2);
  expect((await both.open(sealed, "x")).toString()).toBe("s");
  const rewrapped = await both.rewrap(sealed);
  expect(rewrapped).not.toBeNull();
  expect((await both.open(rewrapped!, "x")).toString()).toBe("s");
  expect(both.kekProvider.createVersion).toBeUndefined();
  // Only the ciphertext's header changed: nonce, tag and ciphertext are the same bytes.
  expect(rewrapped!.subarray(rewrapped!.length - 29).equals(sealed.subarray(sealed.length - 29))).toBe(true);
});

it("processes adding KEK versions to the same file at once keep every key (the file is locked and re-read)", async () => {
  const { tempDir } = await import("./helpers/temp.js");
  const { spawn } = await import("node:child_process");
  const dir = tempDir("moat-kek-race-");
  try {
    createKekFile(dir.path);
    const keysDoor = new URL("../src/keys/index.ts", import.meta.url).href;
    const script = `import { fileKekProvider } from ${JSON.stringify(keysDoor)}; const p = fileKekProvider(${JSON.stringify(dir.path)}); for (let i = 0; i < 3; i++) await p.createVersion();`;
    const run = () =>
      new Promise<number | null>((resolve, reject) => {
        const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: ["ignore", "ignore", "inherit"] });
        child.on("error", reject);
        child.on("close", resolve);
      });
    expect(await Promise.all([run(), run(), run()])).toEqual([0, 0, 0]);
    const versions = (await fileKekProvider(dir.path).versions!()).map((v) => v.version);
    expect(versions).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(new Set((await fileKekProvider(dir.path).versions!()).map((v) => v.id)).size).toBe(10);
  } finally {
    dir.cleanup();
  }
});
