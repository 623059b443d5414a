import { mkdirSync, readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApi } from "../src/api/index.js";
import { OtaClient, provisionTufRoot, type OtaStatusReport } from "../src/device/ota-client.js";
import { isMoatError } from "../src/errors.js";
import { FileSecurityCounter, firmwareKeyAad, serializeManifest, verifyFirmware, type OtaMessage } from "../src/firmware/index.js";
import { createTestApp, type TestApp } from "./helpers/app.js";
import { forEachDialect } from "./helpers/dialects.js";
import { tempDir } from "./helpers/temp.js";
import { writeImage } from "./firmware-fixtures.js";

const actor = "test";

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isMoatError(error)) return error.code;
    throw error;
  }
  return "OK";
}

forEachDialect("firmware services over the store", (dialect) => {
  let t: TestApp;
  const dir = tempDir("moat-fw-svc-");

  beforeAll(async () => {
    t = await createTestApp(dialect);
  });
  afterAll(async () => {
    await t.cleanup();
    dir.cleanup();
  });

  it("keeps signing keys sealed by the envelope, bound to their row", async () => {
    const key = await t.app.firmware.keys.generateSigningKey({ name: "release-a", alg: "hybrid-ed25519-mldsa65", actor });
    expect(key).toMatchObject({ purpose: "signing", alg: "hybrid-ed25519-mldsa65", issuer: "root", offline: false });
    const root = (await t.app.firmware.keys.list()).find((k) => k.purpose === "root")!;
    expect(root.alg).toBe("hybrid-ed25519-mldsa65");
    const row = await t.app.store.db.selectFrom("firmware_keys").selectAll().where("name", "=", "release-a").executeTakeFirstOrThrow();
    const sealed = Buffer.from(row.sealed_private_key!);
    expect(sealed.subarray(0, 3).toString()).toBe("MEV");
    const opened = await t.app.envelope.open(sealed, firmwareKeyAad("release-a"));
    expect(opened.length).toBe(64);
    expect(sealed.includes(opened)).toBe(false);
    expect(await code(t.app.envelope.open(sealed, firmwareKeyAad("release-b")))).toBe("ENVELOPE_DECRYPT_FAILED");
    expect(await code(t.app.firmware.keys.generateSigningKey({ name: "release-a", actor }))).toBe("FIRMWARE_KEY_EXISTS");
  });

  it("signs with a stored key, verifies against the exported root, and refuses after revocation", async () => {
    const image = writeImage(dir.path, `svc-${dialect}.bin`, 20_000);
    const manifest = await t.app.firmware.keys.signImage({ image, keyName: "release-a", actor, facts: { vendor: "Acme", hardwareId: "sensor-v2", version: "1.0.0", securityVersion: 1 } });
    const root = await t.app.firmware.keys.rootPublicKey();
    const result = await verifyFirmware(image, serializeManifest(manifest), { trustedRoots: [root], hardwareId: "sensor-v2" });
    expect(result).toMatchObject({ strength: "signed-hybrid", signers: [{ name: "release-a" }] });
    const { version, document } = await t.app.firmware.keys.revoke({ name: "release-a", reason: "keyCompromise", actor });
    expect(version).toBe(1);
    expect(await code(t.app.firmware.keys.verify(image, manifest))).toBe("FIRMWARE_KEY_REVOKED");
    expect(await code(verifyFirmware(image, manifest, { trustedRoots: [root], revocations: document }))).toBe("FIRMWARE_KEY_REVOKED");
    expect(await code(t.app.firmware.keys.signImage({ image, keyName: "release-a", actor, facts: { vendor: "A", hardwareId: "h", version: "1.0.1", securityVersion: 1 } }))).toBe(
      "FIRMWARE_KEY_REVOKED",
    );
    const events = await t.app.audit.list({ type: "firmware.key.revoked" });
    expect(events.map((e) => e.subject)).toEqual(["release-a"]);
  });

  it("needs the offline root's private key to certify a signing key", async () => {
    const { offlinePrivateKey } = await t.app.firmware.keys.createRoot({ name: "cold", alg: "ed25519", offline: true, actor });
    expect(offlinePrivateKey?.length).toBe(32);
    const row = await t.app.store.db.selectFrom("firmware_keys").select("sealed_private_key").where("name", "=", "cold").executeTakeFirstOrThrow();
    expect(row.sealed_private_key).toBeNull();
    expect(await code(t.app.firmware.keys.generateSigningKey({ name: "cold-signer", root: "cold", actor }))).toBe("FIRMWARE_KEY_NOT_FOUND");
    const key = await t.app.firmware.keys.generateSigningKey({ name: "cold-signer", root: "cold", rootPrivateKey: offlinePrivateKey!, actor });
    expect(key.issuer).toBe("cold");
  });

  it("runs a persisted campaign: stages open as devices boot, it pauses over the failure rate, every transition is audited", async () => {
    for (let i = 0; i < 10; i++) await t.app.devices.create({ id: `lab-${dialect}-${i}`, group: "lab", status: "active" }, actor);
    await t.app.devices.create({ id: `lab-${dialect}-off`, group: "lab", status: "pending" }, actor);
    await t.app.firmware.keys.generateSigningKey({ name: "release-b", actor });
    const image = writeImage(dir.path, `camp-${dialect}.bin`, 30_000);
    const manifest = serializeManifest(
      await t.app.firmware.keys.signImage({ image, keyName: "release-b", actor, facts: { vendor: "Acme", hardwareId: "sensor-v2", version: "2.0.0", securityVersion: 2 } }),
    );
    const sent: { deviceId: string; message: OtaMessage }[] = [];
    t.app.firmware.campaigns.setNotifier({ notify: async (deviceId, message) => void sent.push({ deviceId, message }) });
    const campaign = await t.app.firmware.campaigns.release({ image, manifest, group: "lab", stages: "10,50,100", maxFailureRate: "20%", actor });
    expect(campaign.devices).toHaveLength(10);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.message).toMatchObject({ type: "ota.update", imageTarget: "sensor-v2/2.0.0/" + `camp-${dialect}.bin`, manifestTarget: "sensor-v2/2.0.0/manifest.json" });
    const targets = await t.app.firmware.tuf.listTargets();
    expect(targets.map((x) => x.path)).toContain("sensor-v2/2.0.0/manifest.json");

    for (const status of ["downloading", "verified", "installed", "booted"]) await t.app.firmware.campaigns.report(campaign.id, sent[0]!.deviceId, status);
    expect(sent).toHaveLength(5); // stage 2 opened: 50% of 10
    const stage2 = sent.slice(1).map((s) => s.deviceId);
    await t.app.firmware.campaigns.report(campaign.id, stage2[0]!, "failed:FIRMWARE_DIGEST_MISMATCH");
    let current = await t.app.firmware.campaigns.get(campaign.id);
    expect(current.status).toBe("running"); // 1/5 = 20%, not over
    await t.app.firmware.campaigns.report(campaign.id, stage2[1]!, "rolled-back");
    current = await t.app.firmware.campaigns.get(campaign.id);
    expect(current).toMatchObject({ status: "paused", pauseReason: "failure-rate" });
    expect(await code(t.app.firmware.campaigns.report(campaign.id, "nobody", "booted"))).toBe("OTA_DEVICE_NOT_IN_CAMPAIGN");
    expect(await code(t.app.firmware.campaigns.pause(campaign.id, actor))).toBe("OTA_CAMPAIGN_TRANSITION");
    expect((await t.app.firmware.campaigns.resume(campaign.id, actor)).status).toBe("running");
    expect((await t.app.firmware.campaigns.abort(campaign.id, actor)).status).toBe("aborted");
    expect(sent.filter((s) => s.message.type === "ota.abort").map((s) => s.deviceId).sort()).toEqual(stage2.slice(2).sort());
    const types = (await t.app.audit.list({ limit: 1000 })).filter((e) => e.type.startsWith("ota.campaign.")).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(["ota.campaign.created", "ota.campaign.stage-opened", "ota.campaign.paused", "ota.campaign.resumed", "ota.campaign.aborted"]));
    expect(await code(t.app.firmware.campaigns.release({ image, manifest, group: "nobody-here", actor }))).toBe("OTA_GROUP_EMPTY");
    // A release whose image does not match its manifest is refused and recorded.
    const other = writeImage(dir.path, `other-${dialect}.bin`, 30_000);
    expect(await code(t.app.firmware.campaigns.release({ image: other, manifest, group: "lab", actor }))).toBe("FIRMWARE_DIGEST_MISMATCH");
    expect((await t.app.audit.list({ type: "firmware.rejected" })).map((e) => e.data.code)).toEqual(["FIRMWARE_DIGEST_MISMATCH"]);
  });
});

describe("TUF over the API's HTTPS: a device updates from /tuf/ and reports into the campaign", () => {
  let t: TestApp;
  let api: FastifyInstance;
  let url: string;
  let ca: string;
  const dir = tempDir("moat-fw-api-");

  beforeAll(async () => {
    t = await createTestApp("sqlite");
    const tls = await t.app.ca.serverTls();
    ca = tls.ca;
    api = await buildApi(t.app, { https: tls, bodyLimitBytes: 1 << 20, authFailureLimit: 5, authFailureWindowSeconds: 60 });
    await api.listen({ host: "127.0.0.1", port: 0 });
    url = `https://127.0.0.1:${(api.server.address() as AddressInfo).port}/tuf/`;
  });
  afterAll(async () => {
    await api?.close();
    await t?.cleanup();
    dir.cleanup();
  });

  it("releases, serves and installs v2 end to end", async () => {
    await t.app.devices.create({ id: "edge-1", group: "edge", status: "active" }, actor);
    await t.app.firmware.keys.generateSigningKey({ name: "release", alg: "ecdsa-p256", actor });
    const image = writeImage(dir.path, "image.bin", 64_000);
    const manifest = serializeManifest(
      await t.app.firmware.keys.signImage({ image, actor, facts: { vendor: "Acme", hardwareId: "edge-gw", version: "2.0.0", securityVersion: 2 } }),
    );
    const campaign = await t.app.firmware.campaigns.release({ image, manifest, group: "edge", stages: "100", maxFailureRate: 0, actor });
    const device = join(dir.path, "edge-1");
    mkdirSync(device, { recursive: true });
    await provisionTufRoot(join(device, "tuf"), await t.app.firmware.tuf.trustedRoot(1));
    const reports: OtaStatusReport[] = [];
    const client = new OtaClient({
      hardwareId: "edge-gw",
      repositoryUrl: url,
      metadataDir: join(device, "tuf"),
      slotsDir: join(device, "slots"),
      trustedRoots: [await t.app.firmware.keys.rootPublicKey()],
      counter: new FileSecurityCounter(join(device, "counter")),
      tls: { ca },
      // The device's status topic, short-circuited into the campaign's status intake.
      onStatus: async (report) => {
        reports.push(report);
        await t.app.firmware.campaigns.report(report.campaignId!, "edge-1", report.status);
      },
    });
    const outcome = await client.update({ campaignId: campaign.id, imageTarget: campaign.release.imageTarget, manifestTarget: campaign.release.manifestTarget });
    expect(outcome).toMatchObject({ status: "booted", version: "2.0.0" });
    expect(reports.map((r) => r.status)).toEqual(["downloading", "verified", "installed", "booted"]);
    expect((await t.app.firmware.campaigns.get(campaign.id)).status).toBe("completed");
    expect(readFileSync(join(device, "slots", "b", "image.bin")).equals(readFileSync(image))).toBe(true);

    const operator = (await t.app.tokens.create({ name: "op", role: "operator" }, actor)).token;
    const view = await api.inject({ url: `/v1/ota/campaigns/${campaign.id}`, headers: { authorization: `Bearer ${operator}` } });
    expect(view.json()).toMatchObject({ status: "completed", counts: { booted: 1 } });
    expect((await api.inject({ url: `/v1/ota/campaigns/${campaign.id}` })).statusCode).toBe(401);
    // Encoded traversal reaches the TUF handler, which refuses it; the plain form never matches the route.
    expect((await api.inject({ url: "/tuf/metadata/%2e%2e%2f%2e%2e%2fkek.key" })).statusCode).toBe(404);
    expect((await api.inject({ url: "/tuf/targets/..%2F..%2Fkek.key" })).statusCode).toBe(404);
    expect((await api.inject({ url: "/tuf/metadata/../../kek.key" })).statusCode).not.toBe(200);
    expect((await api.inject({ url: "/tuf/metadata/1.root.json" })).statusCode).toBe(200);
  });
});
