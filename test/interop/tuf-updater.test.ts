import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Metadata, MetadataKind, Timestamp } from "@tufjs/models";

type JSONObject = Parameters<typeof Metadata.fromJSON>[1];
import { Updater } from "tuf-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TufHttpsFetcher } from "../../src/device/tuf-https-fetcher.js";
import { generateTufKey } from "../../src/firmware/index.js";
import { requireCommand } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";
import { createTestRepository, loopbackCertificate, publishRelease, signedManifestFor, signingSetup, startTufServer, writeImage } from "../firmware-fixtures.js";

const hasOpenssl = requireCommand("openssl", "openssl");
const DAY = 86_400_000;

describe.skipIf(!hasOpenssl)("tuf-js client against Moat's TUF repository over HTTPS", () => {
  const dir = tempDir("moat-tuf-");
  let tls: { key: Buffer; cert: Buffer };
  let clients = 0;

  beforeAll(() => {
    tls = loopbackCertificate(dir.path);
  });
  afterAll(() => dir.cleanup());

  /** A fresh device: its own metadata folder holding the pinned root v1, and a tuf-js Updater. */
  function newClient(repoDir: string, url: string): { updater: () => Updater; metadataDir: string; targetDir: string } {
    const metadataDir = join(dir.path, `client-${++clients}`, "metadata");
    const targetDir = join(dir.path, `client-${clients}`, "targets");
    mkdirSync(metadataDir, { recursive: true });
    mkdirSync(targetDir, { recursive: true });
    cpSync(join(repoDir, "metadata", "1.root.json"), join(metadataDir, "root.json"));
    const updater = () =>
      new Updater({ metadataDir, metadataBaseUrl: `${url}metadata`, targetBaseUrl: `${url}targets`, targetDir, fetcher: new TufHttpsFetcher({ ca: tls.cert }) });
    return { updater, metadataDir, targetDir };
  }

  async function repository(name: string, now?: Date) {
    const repoDir = join(dir.path, name);
    const made = await createTestRepository(repoDir, now);
    const server = await startTufServer(repoDir, tls);
    return { repoDir, ...made, server };
  }

  it("updates v1 → v2 from the running server, with consistent snapshots and custom target fields", async () => {
    const { repo, repoDir, server } = await repository("repo-update");
    try {
      const fw = await signingSetup();
      const v1 = writeImage(dir.path, "v1.bin", 50_000);
      const r1 = await publishRelease(repo, v1, await signedManifestFor(v1, fw, { version: "1.0.0", securityVersion: 1, imagePath: "sensor-v2/1.0.0/image.bin" }));
      const client = newClient(repoDir, server.url);
      const first = client.updater();
      await first.refresh();
      const info1 = await first.getTargetInfo(r1.imageTarget);
      expect(info1?.custom).toMatchObject({ hardwareId: "sensor-v2", version: "1.0.0", securityVersion: 1, kind: "image" });
      const out1 = await first.downloadTarget(info1!, join(client.targetDir, "v1.bin"));
      expect(readFileSync(out1).equals(readFileSync(v1))).toBe(true);

      const v2 = writeImage(dir.path, "v2.bin", 60_000);
      const r2 = await publishRelease(repo, v2, await signedManifestFor(v2, fw, { version: "2.0.0", securityVersion: 2, imagePath: "sensor-v2/2.0.0/image.bin" }));
      const second = client.updater();
      await second.refresh();
      const info2 = await second.getTargetInfo(r2.imageTarget);
      expect(info2?.custom).toMatchObject({ version: "2.0.0", securityVersion: 2 });
      const out2 = await second.downloadTarget(info2!, join(client.targetDir, "v2.bin"));
      expect(readFileSync(out2).equals(readFileSync(v2))).toBe(true);

      // Consistent snapshots (TUF §5.6): versioned metadata and hash-prefixed target names.
      const metadata = readdirSync(join(repoDir, "metadata"));
      expect(metadata).toEqual(expect.arrayContaining(["1.root.json", "3.targets.json", "3.snapshot.json", "timestamp.json"]));
      const sha = info2!.hashes.sha256!;
      expect(existsSync(join(repoDir, "targets", "sensor-v2", "2.0.0", `${sha}.image.bin`))).toBe(true);
      const trusted = JSON.parse(readFileSync(join(client.metadataDir, "timestamp.json"), "utf8"));
      expect(trusted.signed.version).toBe(3);
    } finally {
      await server.close();
    }
  });

  it("refuses a tampered image", async () => {
    const { repo, repoDir, server } = await repository("repo-tamper");
    try {
      const fw = await signingSetup();
      const image = writeImage(dir.path, "t.bin", 40_000);
      const release = await publishRelease(repo, image, await signedManifestFor(image, fw));
      const client = newClient(repoDir, server.url);
      const updater = client.updater();
      const info = await updater.getTargetInfo(release.imageTarget);
      const parts = release.imageTarget.split("/");
      const served = join(repoDir, "targets", ...parts.slice(0, -1), `${info!.hashes.sha256}.${parts.at(-1)}`);
      const bytes = readFileSync(served);
      bytes[100] ^= 0xff;
      writeFileSync(served, bytes);
      await expect(updater.downloadTarget(info!, join(client.targetDir, "t.bin"))).rejects.toThrow(/hash|length/i);
      expect(existsSync(join(client.targetDir, "t.bin"))).toBe(false);
    } finally {
      await server.close();
    }
  });

  it("refuses metadata signed by a key the root does not list", async () => {
    const { repoDir, server } = await repository("repo-wrongkey");
    try {
      const timestampPath = join(repoDir, "metadata", "timestamp.json");
      const genuine = Metadata.fromJSON(MetadataKind.Timestamp, JSON.parse(readFileSync(timestampPath, "utf8")) as JSONObject);
      const forged = new Metadata(
        new Timestamp({ version: genuine.signed.version + 1, specVersion: "1.0.31", expires: genuine.signed.expires, snapshotMeta: genuine.signed.snapshotMeta }),
      );
      const intruder = generateTufKey().signer;
      forged.sign((data) => intruder.sign(data));
      writeFileSync(timestampPath, JSON.stringify(forged.toJSON()));
      const client = newClient(repoDir, server.url);
      await expect(client.updater().refresh()).rejects.toThrow(/timestamp was signed by 0\/1 keys/);
    } finally {
      await server.close();
    }
  });

  it("refuses an expired timestamp, and accepts again once the repository refreshes it", async () => {
    // Published two days ago: the one-day timestamp has expired, root/targets/snapshot have not.
    const { repo, repoDir, server } = await repository("repo-expired", new Date(Date.now() - 2 * DAY));
    try {
      const client = newClient(repoDir, server.url);
      await expect(client.updater().refresh()).rejects.toThrow(/timestamp\.json is expired|expired/i);
      const refreshed = await repo.refresh();
      expect(refreshed.timestamp).toBe(true);
      await expect(client.updater().refresh()).resolves.toBeUndefined();
    } finally {
      await server.close();
    }
  });

  it("refuses replayed older metadata after seeing a newer version", async () => {
    const { repo, repoDir, server } = await repository("repo-replay");
    try {
      const fw = await signingSetup();
      const old = readFileSync(join(repoDir, "metadata", "timestamp.json"));
      const image = writeImage(dir.path, "r.bin", 10_000);
      await publishRelease(repo, image, await signedManifestFor(image, fw));
      const client = newClient(repoDir, server.url);
      await client.updater().refresh();
      // A man in the middle (or a stale mirror) serves the older, validly signed timestamp v1.
      writeFileSync(join(repoDir, "metadata", "timestamp.json"), old);
      await expect(client.updater().refresh()).rejects.toThrow(/version/i);
    } finally {
      await server.close();
    }
  });

  it("rotates the online timestamp key and the root keys through new root versions", async () => {
    const { repo, repoDir, server, keyring, roots, online } = await repository("repo-rotate");
    try {
      const client = newClient(repoDir, server.url);
      await client.updater().refresh();
      const newTimestamp = generateTufKey().signer;
      keyring.add(newTimestamp);
      expect(await repo.rotateKeys("timestamp", { keys: [newTimestamp.key], threshold: 1 })).toBe(2);
      const newRoots = [generateTufKey().signer, generateTufKey().signer];
      newRoots.forEach((s) => keyring.add(s));
      expect(await repo.rotateKeys("root", { keys: newRoots.map((s) => s.key), threshold: 2 })).toBe(3);
      await client.updater().refresh();
      const trustedRoot = JSON.parse(readFileSync(join(client.metadataDir, "root.json"), "utf8"));
      expect(trustedRoot.signed.version).toBe(3);
      expect(trustedRoot.signed.roles.timestamp.keyids).toEqual([newTimestamp.key.keyID]);
      // v3 carries signatures of both the old and the new root keys (TUF §5.3.4: both thresholds).
      const signers = trustedRoot.signatures.map((s: { keyid: string }) => s.keyid);
      expect(signers.filter((id: string) => roots.some((r) => r.key.keyID === id)).length).toBeGreaterThanOrEqual(2);
      expect(signers.filter((id: string) => newRoots.some((r) => r.key.keyID === id)).length).toBe(2);
      // A timestamp signed by the retired key is refused now.
      const timestampPath = join(repoDir, "metadata", "timestamp.json");
      const genuine = Metadata.fromJSON(MetadataKind.Timestamp, JSON.parse(readFileSync(timestampPath, "utf8")) as JSONObject);
      const stale = new Metadata(new Timestamp({ version: genuine.signed.version + 1, specVersion: "1.0.31", expires: genuine.signed.expires, snapshotMeta: genuine.signed.snapshotMeta }));
      stale.sign((data) => online.timestamp.sign(data));
      writeFileSync(timestampPath, JSON.stringify(stale.toJSON()));
      await expect(client.updater().refresh()).rejects.toThrow(/timestamp was signed by 0\/1 keys/);
    } finally {
      await server.close();
    }
  });
});
