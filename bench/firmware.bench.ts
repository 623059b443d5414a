/**
 * Firmware verification throughput and signature rates.
 * - Secure-boot verification of a 256 MiB image (64 MiB with --quick): the full check (manifest,
 *   certificate, signature, streaming SHA-256 in constant memory) in MB/s, beside `sha256sum` of the
 *   same file in the same run. Both read the file from the page cache (a warm-up pass runs first).
 * - Sign and verify rates of a manifest-sized message per algorithm, beside `openssl speed` for the
 *   classical algorithms; the hybrid Ed25519 + ML-DSA-65 has no reference tool here.
 */
import { execFileSync } from "node:child_process";
import { openSync, writeSync, closeSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { BenchContext, BenchRow } from "./harness.js";
import {
  buildManifest,
  documentBytes,
  certifySigningKey,
  firmwarePublicKey,
  generateKeyPair,
  memorySigner,
  signManifest,
  signMessage,
  verifyFirmware,
  verifyMessage,
  SIGNATURE_ALGORITHMS,
  type SignatureAlgorithm,
} from "../src/firmware/index.js";

const MIB = 1 << 20;

function writeImage(path: string, mib: number): void {
  const fd = openSync(path, "w");
  const block = randomBytes(MIB);
  for (let i = 0; i < mib; i++) {
    block[0] = i & 0xff; // blocks differ, so nothing deduplicates
    writeSync(fd, block);
  }
  closeSync(fd);
}

function sha256sumSeconds(path: string): number {
  const start = process.hrtime.bigint();
  execFileSync("sha256sum", [path], { stdio: ["ignore", "pipe", "ignore"] });
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/** Operations per second of `op`, run for about `seconds`. */
function rate(op: () => void, seconds: number): number {
  op();
  let count = 0;
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(seconds * 1e9));
  let elapsed = 0n;
  do {
    op();
    count++;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < budget);
  return count / (Number(elapsed) / 1e9);
}

/** `openssl speed` sign/s and verify/s for ed25519 or ecdsap256, or null when openssl is missing. */
function opensslSpeed(alg: "ed25519" | "ecdsap256", seconds: number): { sign: number; verify: number } | null {
  try {
    const out = execFileSync("openssl", ["speed", "-seconds", String(seconds), alg], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const line = out.split("\n").find((l) => (alg === "ed25519" ? /Ed25519/.test(l) && /\d+\.\d+\s+\d+\.\d+\s*$/.test(l) : /nistp256/.test(l) && /\d+\.\d+\s+\d+\.\d+\s*$/.test(l)));
    if (!line) return null;
    const numbers = line.trim().split(/\s+/).slice(-2).map(Number);
    return { sign: numbers[0]!, verify: numbers[1]! };
  } catch {
    return null;
  }
}

export default async function (ctx: BenchContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const mib = ctx.quick ? 64 : 256;
  const image = join(ctx.tmpDir, "firmware.bin");
  ctx.log(`firmware: writing a ${mib} MiB image`);
  writeImage(image, mib);

  const rootPair = generateKeyPair("ed25519");
  const rootKey = firmwarePublicKey("ed25519", rootPair.publicKey);
  const pair = generateKeyPair("ed25519");
  const key = firmwarePublicKey("ed25519", pair.publicKey);
  const certificate = await certifySigningKey(memorySigner(rootKey, rootPair.privateKey), key, {
    name: "bench",
    notBefore: new Date(Date.now() - 86_400_000),
    notAfter: new Date(Date.now() + 86_400_000),
  });
  const manifest = await signManifest(await buildManifest(image, { vendor: "Bench", hardwareId: "bench-hw", version: "1.0.0", securityVersion: 1 }), [
    { signer: memorySigner(key, pair.privateKey), certificate },
  ]);
  const policy = { trustedRoots: [rootKey], hardwareId: "bench-hw", minSecurityVersion: 1 };

  ctx.log("firmware: warm-up pass (page cache)");
  sha256sumSeconds(image);
  await verifyFirmware(image, manifest, policy);
  const moatTimes: number[] = [];
  const referenceTimes: number[] = [];
  for (let run = 0; run < 3; run++) {
    ctx.log(`firmware: verify run ${run + 1}/3`);
    moatTimes.push(await timed(() => verifyFirmware(image, manifest, policy)));
    referenceTimes.push(sha256sumSeconds(image));
  }
  const best = (times: number[]) => Math.min(...times);
  rows.push({
    measure: `secure-boot verify of a ${mib} MiB image (manifest + certificate + streaming SHA-256)`,
    moat: Math.round((mib * MIB) / 1e6 / best(moatTimes)),
    reference: Math.round((mib * MIB) / 1e6 / best(referenceTimes)),
    referenceName: "sha256sum of the same file",
    unit: "MB/s",
    higherIsBetter: true,
    goal: ">= 0.9x",
    note: "best of 3, page cache warm",
  });

  const seconds = ctx.quick ? 0.5 : 1.5;
  const message = documentBytes({ ...JSON.parse(Buffer.from(manifest.payload, "base64url").toString("utf8")) });
  for (const alg of SIGNATURE_ALGORITHMS as readonly SignatureAlgorithm[]) {
    ctx.log(`firmware: ${alg} sign/verify rates`);
    const keys = generateKeyPair(alg);
    const signature = signMessage(alg, keys.privateKey, message);
    const signRate = rate(() => signMessage(alg, keys.privateKey, message), seconds);
    const verifyRate = rate(() => {
      if (!verifyMessage(alg, keys.publicKey, message, signature).valid) throw new Error("bench signature failed");
    }, seconds);
    const reference = alg === "hybrid-ed25519-mldsa65" ? null : opensslSpeed(alg === "ed25519" ? "ed25519" : "ecdsap256", ctx.quick ? 1 : 2);
    const referenceName = alg === "ed25519" ? "openssl speed ed25519" : alg === "ecdsa-p256" ? "openssl speed ecdsap256" : undefined;
    rows.push({
      measure: `sign a ${message.length}-byte manifest, ${alg}`,
      moat: Math.round(signRate),
      reference: reference ? Math.round(reference.sign) : null,
      ...(referenceName ? { referenceName: `${referenceName} (sign/s)` } : {}),
      unit: "sign/s",
      higherIsBetter: true,
      ...(alg === "hybrid-ed25519-mldsa65" ? { note: "Ed25519 (node:crypto) + ML-DSA-65 (@noble/post-quantum, pure JS)" } : {}),
    });
    rows.push({
      measure: `verify a ${message.length}-byte manifest signature, ${alg}`,
      moat: Math.round(verifyRate),
      reference: reference ? Math.round(reference.verify) : null,
      ...(referenceName ? { referenceName: `${referenceName} (verify/s)` } : {}),
      unit: "verify/s",
      higherIsBetter: true,
      ...(alg === "hybrid-ed25519-mldsa65" ? { note: "both components verified, as the verifier requires" } : {}),
    });
  }
  return rows;
}
