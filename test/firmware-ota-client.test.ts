import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OtaClient, provisionTufRoot, type OtaStatusReport } from "../src/device/ota-client.js";
import { FileSecurityCounter, signRevocationList, type TufRepository } from "../src/firmware/index.js";
import { requireCommand } from "./helpers/requirements.js";
import { tempDir } from "./helpers/temp.js";
import {
  createTestRepository,
  loopbackCertificate,
  publishRelease,
  signedManifestFor,
  signingSetup,
  startTufServer,
  writeImage,
  type FirmwareSigningSetup,
} from "./firmware-fixtures.js";

const hasOpenssl = requireCommand("openssl", "openssl");

describe.skipIf(!hasOpenssl)("device OTA client: TUF, secure boot, A/B slots", () => {
  const dir = tempDir("moat-ota-");
  let repo: TufRepository;
  let repoDir: string;
  let server: { url: string; close: () => Promise<void> };
  let tls: { key: Buffer; cert: Buffer };
  let fw: FirmwareSigningSetup;
  let devices = 0;

  beforeAll(async () => {
    tls = loopbackCertificate(dir.path);
    repoDir = join(dir.path, "repo");
    repo = (await createTestRepository(repoDir)).repo;
    server = await startTufServer(repoDir, tls);
    fw = await signingSetup("hybrid-ed25519-mldsa65");
  });
  afterAll(async () => {
    await server.close();
    dir.cleanup();
  });

  async function release(version: string, securityVersion: number, hardwareId = "sensor-v2") {
    const image = writeImage(dir.path, `fw-${hardwareId}-${version}.bin`, 80_000);
    const targets = await publishRelease(repo, image, await signedManifestFor(image, fw, { version, securityVersion, hardwareId, imagePath: `${hardwareId}/${version}/image.bin` }));
    return { image, ...targets };
  }

  async function device(options: { healthy?: boolean; revocations?: () => Promise<{ list: unknown; minVersion?: number } | undefined> } = {}) {
    const home = join(dir.path, `device-${++devices}`);
    mkdirSync(home, { recursive: true });
    await provisionTufRoot(join(home, "tuf"), readFileSync(join(repoDir, "metadata", "1.root.json")));
    const reports: OtaStatusReport[] = [];
    const counter = new FileSecurityCounter(join(home, "security-counter"));
    const client = new OtaClient({
      hardwareId: "sensor-v2",
      repositoryUrl: server.url,
      metadataDir: join(home, "tuf"),
      slotsDir: join(home, "slots"),
      trustedRoots: [fw.rootKey],
      counter,
      tls: { ca: tls.cert },
      onStatus: (report) => void reports.push(report),
      healthCheck: async () => options.healthy ?? true,
      ...(options.revocations ? { revocations: options.revocations } : {}),
    });
    return { home, client, reports, counter };
  }

  it("installs v1 then v2 into alternating slots, advancing the counter only after boot", async () => {
    const v1 = await release("1.0.0", 1);
    const v2 = await release("2.0.0", 2);
    const d = await device();
    const first = await d.client.update({ campaignId: "c1", imageTarget: v1.imageTarget, manifestTarget: v1.manifestTarget });
    expect(first).toMatchObject({ status: "booted", slot: "b", version: "1.0.0" });
    expect(d.reports.map((r) => r.status)).toEqual(["downloading", "verified", "installed", "booted"]);
    expect(d.reports[0]!.campaignId).toBe("c1");
    expect(await d.counter.read()).toBe(1);
    const second = await d.client.update({ imageTarget: v2.imageTarget, manifestTarget: v2.manifestTarget });
    expect(second).toMatchObject({ status: "booted", slot: "a", version: "2.0.0" });
    expect(await d.counter.read()).toBe(2);
    expect(readFileSync(join(d.home, "slots", "a", "image.bin")).equals(readFileSync(v2.image))).toBe(true);
    expect((await d.client.slotState()).slots).toMatchObject({ a: { version: "2.0.0" }, b: { version: "1.0.0" } });
  });

  it("refuses a downgrade to a lower security version even though TUF serves it", async () => {
    const old = await release("0.9.0", 0);
    const current = await release("3.0.0", 3);
    const d = await device();
    expect((await d.client.update(current)).status).toBe("booted");
    const outcome = await d.client.update(old);
    expect(outcome).toMatchObject({ status: "failed", reason: "FIRMWARE_ROLLBACK" });
    expect(d.reports.at(-1)!.status).toBe("failed:FIRMWARE_ROLLBACK");
    expect((await d.client.slotState()).active).toBe("b");
    expect(await d.counter.read()).toBe(3);
  });

  it("refuses an image for another hardware id", async () => {
    const other = await release("1.0.0", 1, "camera-x1");
    const d = await device();
    expect(await d.client.update(other)).toMatchObject({ status: "failed", reason: "FIRMWARE_HARDWARE_MISMATCH" });
  });

  it("rolls back when the new image fails its health check, keeping the old slot and counter", async () => {
    const v = await release("4.0.0", 4);
    const d = await device({ healthy: false });
    const outcome = await d.client.update(v);
    expect(outcome.status).toBe("rolled-back");
    expect(d.reports.map((r) => r.status)).toEqual(["downloading", "verified", "installed", "rolled-back"]);
    const state = await d.client.slotState();
    expect(state.active).toBe("a");
    expect(state.pending).toBeUndefined();
    expect(existsSync(join(d.home, "slots", "b", "image.bin"))).toBe(false);
    expect(await d.counter.read()).toBe(0);
  });

  it("reports a TUF failure when the served image was tampered with, writing nothing into a slot", async () => {
    const v = await release("5.0.0", 5);
    const targets = await repo.listTargets();
    const info = targets.find((t) => t.path === v.imageTarget)!;
    const served = join(repoDir, "targets", "sensor-v2", "5.0.0", `${info.sha256}.image.bin`);
    const bytes = readFileSync(served);
    bytes[0] ^= 1;
    writeFileSync(served, bytes);
    const d = await device();
    expect(await d.client.update(v)).toMatchObject({ status: "failed", reason: "TUF_UPDATE_FAILED" });
    expect(existsSync(join(d.home, "slots", "b", "image.bin"))).toBe(false);
  });

  it("refuses an update signed by a key on the device's revocation list", async () => {
    const v = await release("6.0.0", 6);
    const list = await signRevocationList(fw.root, 1, [{ keyId: fw.signingKey.keyId, revokedAt: "2026-11-25T00:00:00Z", reason: "keyCompromise" }]);
    const d = await device({ revocations: async () => ({ list, minVersion: 1 }) });
    expect(await d.client.update(v)).toMatchObject({ status: "failed", reason: "FIRMWARE_KEY_REVOKED" });
    expect((await d.client.slotState()).slots).toEqual({});
  });

  it("refuses a target path with ..", async () => {
    const d = await device();
    expect(await d.client.update({ imageTarget: "../../etc/passwd", manifestTarget: "x/manifest.json" })).toMatchObject({ status: "failed", reason: "FIRMWARE_PATH_INVALID" });
  });
});
