import { execFileSync } from "node:child_process";
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { join } from "node:path";
import { sql } from "kysely";
import { Keyring, PayloadOpener, PayloadSealer } from "../src/crypto/index.js";
import { Envelope, KekRotation, Pkcs11Token, createKekFile, createTokenCaKey, fileKekProvider, type RotationState } from "../src/keys/index.js";
import { KyselySealedBlobStore, Store } from "../src/store/index.js";
import type { BenchContext, BenchRow } from "./harness.js";

const SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so";

/** Runs `fn` repeatedly for about `ms` milliseconds and returns operations per second. */
function rate(ms: number, fn: () => void): number {
  const started = process.hrtime.bigint();
  let count = 0;
  let elapsed = 0;
  while (elapsed < ms) {
    for (let i = 0; i < 200; i++) fn();
    count += 200;
    elapsed = Number(process.hrtime.bigint() - started) / 1e6;
  }
  return (count * 1000) / elapsed;
}

/** `openssl speed -evp aes-256-gcm` at one block size, as blocks per second. */
function opensslGcmBlocksPerSecond(bytes: number, seconds: number): number {
  const out = execFileSync("openssl", ["speed", "-evp", "aes-256-gcm", "-bytes", String(bytes), "-seconds", String(seconds)], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  const match = /AES-256-GCM\s+([\d.]+)k/i.exec(out);
  if (!match) throw new Error(`cannot read openssl speed output: ${out.slice(-200)}`);
  return (Number(match[1]) * 1000) / bytes;
}

/** COSE_Encrypt0 throughput, KEK rotation time, PKCS#11 signing rate. */
export default async function cryptoBench(ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const seconds = ctx.quick ? 1 : 3;

  // 1. COSE_Encrypt0 seal + open (kid, sequence number, topic AAD, replay window) of 256-byte payloads.
  const ring = new Keyring().add("bench/1", randomBytes(32));
  const sealer = new PayloadSealer(ring);
  const opener = new PayloadOpener(ring);
  const payload = randomBytes(256);
  const topic = "fleet/bench-device/telemetry";
  ctx.log(`COSE_Encrypt0 seal+open of 256-byte payloads for ${seconds} s`);
  const coseRate = rate(seconds * 1000, () => {
    opener.open(topic, sealer.seal(topic, payload));
  });
  const opensslRate = opensslGcmBlocksPerSecond(256, seconds);
  rows.push({
    measure: "COSE_Encrypt0 A256GCM seal+open, 256-byte payload",
    moat: coseRate,
    reference: opensslRate,
    referenceName: "openssl speed -evp aes-256-gcm -bytes 256 (encrypt only)",
    unit: "msg/s",
    higherIsBetter: true,
    goal: ">= 0.05x",
    note: "Moat: encrypt and decrypt, CBOR headers, topic AAD, replay window, per message; openssl: raw encryption of one block",
  });

  // 2. KEK rotation over N stored secrets (SQLite store, one table of envelopes).
  const secrets = ctx.quick ? 10_000 : 100_000;
  const dataDir = join(ctx.tmpDir, "rotation");
  const store = await Store.open({ dataDir });
  try {
    await store.migrate();
    createKekFile(dataDir);
    const envelope = new Envelope(fileKekProvider(dataDir));
    await sql`create table bench_secrets (id integer primary key, sealed blob not null)`.execute(store.db);
    ctx.log(`sealing ${secrets} secrets`);
    for (let start = 0; start < secrets; start += 1000) {
      const batch: { id: number; sealed: Buffer }[] = [];
      for (let id = start; id < Math.min(start + 1000, secrets); id++) batch.push({ id, sealed: await envelope.seal(randomBytes(32), `bench-secret:${id}`) });
      await store.db.transaction().execute(async (trx) => {
        for (const row of batch) await sql`insert into bench_secrets (id, sealed) values (${row.id}, ${row.sealed})`.execute(trx);
      });
    }
    let state: RotationState | null = null;
    const rotation = new KekRotation(envelope, new KyselySealedBlobStore(store.db, store.dialect), { load: async () => state, save: async (s) => void (state = s) });
    ctx.log(`rotating the KEK over ${secrets} secrets`);
    const started = process.hrtime.bigint();
    const report = await rotation.rotate();
    const rotationSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (report.rewrapped !== secrets || report.remaining !== 0) throw new Error(`rotation rewrapped ${report.rewrapped} of ${secrets}, ${report.remaining} remaining`);

    // Reference: the same table rewritten in place with fresh random blobs of the same size, same batch size (the database floor).
    const refStarted = process.hrtime.bigint();
    for (let start = 0; start < secrets; start += 500) {
      await store.db.transaction().execute(async (trx) => {
        for (let id = start; id < Math.min(start + 500, secrets); id++) await sql`update bench_secrets set sealed = ${randomBytes(129)} where id = ${id}`.execute(trx);
      });
    }
    const refSeconds = Number(process.hrtime.bigint() - refStarted) / 1e9;
    rows.push({
      measure: `KEK rotation: rewrap ${secrets.toLocaleString("en-US")} stored secrets (SQLite)`,
      moat: rotationSeconds,
      reference: refSeconds,
      referenceName: "rewrite the same rows with random bytes (no crypto)",
      unit: "s",
      higherIsBetter: false,
      goal: "<= 60 s for 100k",
      note: "scan by magic, unwrap+wrap each DEK, compare-and-swap writes in batches of 500",
    });
  } finally {
    await store.close();
  }

  // 3. PKCS#11 (SoftHSM2) ECDSA P-256 signing beside software signing.
  let token: Pkcs11Token | undefined;
  try {
    const hsmDir = join(ctx.tmpDir, "hsm");
    execFileSync("mkdir", ["-p", join(hsmDir, "tokens")]);
    const conf = join(hsmDir, "softhsm2.conf");
    execFileSync("sh", ["-c", `printf 'directories.tokendir = %s\\nobjectstore.backend = file\\nlog.level = ERROR\\n' '${join(hsmDir, "tokens")}' > '${conf}'`]);
    process.env.SOFTHSM2_CONF = conf;
    execFileSync("softhsm2-util", ["--init-token", "--free", "--label", "moat-bench", "--pin", "1111", "--so-pin", "2222"], { stdio: "ignore" });
    token = Pkcs11Token.open({ modulePath: SOFTHSM_MODULE, tokenLabel: "moat-bench", pin: () => "1111" });
    const signer = createTokenCaKey(token, "bench");
    const tbs = randomBytes(600);
    ctx.log(`PKCS#11 signing for ${seconds} s`);
    let hsmCount = 0;
    const hsmStarted = process.hrtime.bigint();
    let hsmElapsed = 0;
    while (hsmElapsed < seconds * 1000) {
      for (let i = 0; i < 100; i++) await signer.sign(tbs);
      hsmCount += 100;
      hsmElapsed = Number(process.hrtime.bigint() - hsmStarted) / 1e6;
    }
    const hsmRate = (hsmCount * 1000) / hsmElapsed;
    const software = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey;
    const softwareRate = rate(seconds * 1000, () => {
      sign("sha256", tbs, software);
    });
    rows.push({
      measure: "CA signing, ECDSA P-256 over 600-byte TBS, key in PKCS#11 token (SoftHSM2)",
      moat: hsmRate,
      reference: softwareRate,
      referenceName: "node:crypto software key",
      unit: "sig/s",
      higherIsBetter: true,
      note: "hash in Moat, CKM_ECDSA in the token, r||s → DER",
    });
  } catch (error) {
    ctx.log(`PKCS#11 bench skipped: ${(error as Error).message}`);
  } finally {
    token?.close();
  }
  return rows;
}
