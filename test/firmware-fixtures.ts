import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import {
  MemoryTufKeyring,
  TufRepository,
  createTufHandler,
  generateTufKey,
  serializeManifest,
  type TufSigner,
  buildManifest,
  certifySigningKey,
  firmwarePublicKey,
  generateKeyPair,
  memorySigner,
  signManifest,
  type DocumentSigner,
  type FirmwarePublicKey,
  type ManifestFacts,
  type SignatureAlgorithm,
  type SignedDocument,
  type SignedManifest,
} from "../src/firmware/index.js";

/** A root key and a signing key it certified, all in memory. */
export interface FirmwareSigningSetup {
  root: DocumentSigner;
  rootKey: FirmwarePublicKey;
  signer: DocumentSigner;
  signingKey: FirmwarePublicKey;
  signingPrivate: Buffer;
  certificate: SignedDocument;
}

const YEAR = 365 * 86_400_000;

export async function signingSetup(alg: SignatureAlgorithm = "ed25519", rootAlg: SignatureAlgorithm = "ed25519", window?: { notBefore: Date; notAfter: Date }): Promise<FirmwareSigningSetup> {
  const rootPair = generateKeyPair(rootAlg);
  const rootKey = firmwarePublicKey(rootAlg, rootPair.publicKey);
  const root = memorySigner(rootKey, rootPair.privateKey);
  const pair = generateKeyPair(alg);
  const signingKey = firmwarePublicKey(alg, pair.publicKey);
  const signer = memorySigner(signingKey, pair.privateKey);
  const certificate = await certifySigningKey(root, signingKey, {
    name: `${alg}-signer`,
    notBefore: window?.notBefore ?? new Date(Date.now() - YEAR),
    notAfter: window?.notAfter ?? new Date(Date.now() + YEAR),
  });
  return { root, rootKey, signer, signingKey, signingPrivate: pair.privateKey, certificate };
}

/** Writes a random image of `size` bytes and returns its path. */
export function writeImage(dir: string, name: string, size: number): string {
  const path = join(dir, name);
  writeFileSync(path, randomBytes(size));
  return path;
}

export async function signedManifestFor(
  image: string,
  setup: Pick<FirmwareSigningSetup, "signer" | "certificate">,
  facts: Partial<ManifestFacts> = {},
): Promise<SignedManifest> {
  const manifest = await buildManifest(image, { vendor: "Acme", hardwareId: "sensor-v2", version: "1.0.0", securityVersion: 1, ...facts });
  return signManifest(manifest, [{ signer: setup.signer, certificate: setup.certificate }]);
}

/** A self-signed P-256 certificate for 127.0.0.1 made by openssl (the test needs `openssl`). */
export function loopbackCertificate(dir: string): { key: Buffer; cert: Buffer } {
  const keyPath = join(dir, "tls-key.pem");
  const certPath = join(dir, "tls-cert.pem");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyPath, "-out", certPath,
    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
  ], { stdio: "ignore" });
  return { key: readFileSync(keyPath), cert: readFileSync(certPath) };
}

/** Serves a TUF repository directory over HTTPS on 127.0.0.1 with Moat's handler. */
export async function startTufServer(repoDir: string, tls: { key: Buffer; cert: Buffer }, beforeTimestamp?: () => Promise<unknown>): Promise<{ url: string; close: () => Promise<void> }> {
  const handler = createTufHandler({ dir: repoDir, ...(beforeTimestamp ? { beforeTimestamp } : {}) });
  const server = createServer(tls, (req, res) => {
    handler(req, res)
      .then((handled) => {
        if (!handled) res.writeHead(404).end();
      })
      .catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}/tuf/`,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** A TUF repository with 2-of-3 root keys and one key per online role, all in one memory keyring. */
export async function createTestRepository(dir: string, now?: Date): Promise<{ repo: TufRepository; keyring: MemoryTufKeyring; roots: TufSigner[]; online: Record<"targets" | "snapshot" | "timestamp", TufSigner> }> {
  const roots = [generateTufKey().signer, generateTufKey().signer, generateTufKey().signer];
  const online = { targets: generateTufKey().signer, snapshot: generateTufKey().signer, timestamp: generateTufKey().signer };
  const keyring = new MemoryTufKeyring([...roots, ...Object.values(online)]);
  const repo = await TufRepository.create(
    dir,
    keyring,
    {
      root: { keys: roots.map((s) => s.key), threshold: 2 },
      targets: { keys: [online.targets.key], threshold: 1 },
      snapshot: { keys: [online.snapshot.key], threshold: 1 },
      timestamp: { keys: [online.timestamp.key], threshold: 1 },
    },
    now ? { now } : {},
  );
  return { repo, keyring, roots, online };
}

/** Publishes an image and its signed manifest as TUF targets with the custom fields the OTA client checks. */
export async function publishRelease(repo: TufRepository, image: string, manifest: SignedManifest): Promise<{ imageTarget: string; manifestTarget: string }> {
  const body = JSON.parse(Buffer.from(manifest.payload, "base64url").toString("utf8")) as { hardwareId: string; version: string; securityVersion: number; image: { path: string } };
  const custom = { hardwareId: body.hardwareId, version: body.version, securityVersion: body.securityVersion };
  const imageTarget = body.image.path;
  const manifestTarget = imageTarget.replace(/[^/]+$/, "manifest.json");
  await repo.addTargets([
    { path: imageTarget, source: image, custom: { ...custom, kind: "image" } },
    { path: manifestTarget, source: Buffer.from(serializeManifest(manifest)), custom: { ...custom, kind: "manifest" } },
  ]);
  return { imageTarget, manifestTarget };
}
