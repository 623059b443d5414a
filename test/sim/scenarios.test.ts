/**
 * Every `moat sim` scenario at a small size against a real Moat served in this process (createApp,
 * startServers and startMqttBroker, as `moat serve` runs them), with devices that are the device SDK's
 * own MoatDevice over EST and mTLS. The outcomes are asserted; the times are only reported.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalMoat, type LocalMoat } from "../../src/cli/local-moat.js";
import { AdminApi, runSimulation, sdkDeviceFactory, type ScenarioName, type SimulationSummary } from "../../src/sim/index.js";

const DEVICES = 20;

describe("moat sim scenarios against a real Moat", () => {
  let local: LocalMoat;
  let workDir: string;

  beforeAll(async () => {
    local = await startLocalMoat();
    workDir = mkdtempSync(join(tmpdir(), "moat-sim-test-"));
  });

  afterAll(async () => {
    await local?.close();
    rmSync(workDir, { recursive: true, force: true });
  });

  function run(scenario: ScenarioName, options: { devices?: number; durationMs?: number; cleanup?: boolean } = {}): Promise<SimulationSummary> {
    return runSimulation({
      api: new AdminApi({ url: local.apiUrl, ca: local.ca, token: local.adminToken }),
      factory: sdkDeviceFactory(),
      server: local.apiUrl,
      ca: local.ca,
      mqttUrl: local.mqttUrl,
      prefix: `t-${scenario}-`,
      size: options.devices ?? DEVICES,
      workDir,
      scenario,
      rate: 2,
      durationMs: options.durationMs ?? 3_000,
      cleanup: options.cleanup ?? true,
      control: { restartBroker: local.restartBroker, ota: local.ota },
    });
  }

  it("steady: every device enrolls, connects and delivers every acknowledged message; --cleanup decommissions the run", async () => {
    const s = await run("steady");
    expect(s).toMatchObject({ scenario: "steady", devices: DEVICES, enrolled: DEVICES, connected: DEVICES, denied: 0, lost: 0, errorsByCode: {}, cleanedUp: true });
    expect(s.sent).toBeGreaterThan(0);
    expect(s.received).toBe(s.sent);
    expect(s.latencyMs.p50).not.toBeNull();
    expect(s.latencyMs.p99!).toBeGreaterThanOrEqual(s.latencyMs.p50!);
    // Ids are <prefix><run id>-<n>; the run's devices (and its collector) are decommissioned.
    const devices = (await local.app.devices.list({ search: `t-steady-${s.runId}-`, limit: 100 })).devices;
    expect(devices.map((d) => d.id).sort()).toEqual([...Array.from({ length: DEVICES }, (_, i) => `t-steady-${s.runId}-${i + 1}`), `t-steady-${s.runId}-collector`].sort());
    expect(new Set(devices.map((d) => d.status))).toEqual(new Set(["decommissioned"]));
    await expect(local.app.policy.getRole(`sim-collector-${s.runId}`)).rejects.toMatchObject({ code: "ROLE_NOT_FOUND" });
  });

  it("compromise: the attacker is denied, revoked and cut off, and stops retrying; every honest device keeps working", async () => {
    const s = await run("compromise");
    expect(s).toMatchObject({ enrolled: DEVICES, connected: DEVICES, attempted: 4, subscribesRefused: 2, forgedDelivered: 0, attackerStopped: true, honestDevices: DEVICES - 1, honestDevicesOk: true, lost: 0 });
    expect(s.denied).toBe(4);
    expect(s.attackerStopCode).toBe("DEVICE_REVOKED");
    expect(typeof s.revocationToDisconnectMs).toBe("number");
    const attacker = await local.app.pki.certificates.list({ deviceId: s.attackerId as string });
    expect(attacker.every((c) => c.revokedAt !== null)).toBe(true);
  });

  it("ota: the campaign pauses at its failure threshold, and the device that was off when its stage opened gets its offer", async () => {
    const s = await run("ota");
    expect(s).toMatchObject({ campaignStatus: "paused", pauseReason: "failure-rate", stopsAtThreshold: true, stageReached: 50, lateDeviceOffered: true, lost: 0 });
    expect(s.failed as number).toBeGreaterThan(0);
    expect(s.neverOffered).toBe(DEVICES / 2);
    expect(s.offered).toBe(DEVICES / 2);
    // Ended by the simulator, so nothing stays owed to the run's devices.
    expect((await local.app.firmware.campaigns.get(s.campaignId as string)).status).toBe("aborted");
  });

  it("outage: the broker restarts and the whole fleet comes back; no acknowledged message is lost", async () => {
    const s = await run("outage", { durationMs: 3_000 });
    expect(s).toMatchObject({ enrolled: DEVICES, devicesBack: DEVICES, allBack: true, lost: 0 });
    expect(s.allBackMs).toBeGreaterThanOrEqual(0);
  });

  it("rotation: every device moves to a new certificate under load and no QoS 1 message is lost", async () => {
    const s = await run("rotation", { durationMs: 4_000 });
    expect(s).toMatchObject({ enrolled: DEVICES, renewed: DEVICES, renewFailures: 0, lost: 0, noMessageLost: true, errorsByCode: {} });
    expect(s.received).toBe(s.sent);
  });

  it("rotation with short-lived certificates: every device renews on its own under load, and no QoS 1 message is lost", async () => {
    const shortLived = await startLocalMoat({ settings: { "pki.certLifetime": "20s" } });
    try {
      const s = await runSimulation({
        api: new AdminApi({ url: shortLived.apiUrl, ca: shortLived.ca, token: shortLived.adminToken }),
        factory: sdkDeviceFactory(),
        server: shortLived.apiUrl,
        ca: shortLived.ca,
        mqttUrl: shortLived.mqttUrl,
        prefix: "t-auto-",
        size: 10,
        workDir,
        scenario: "rotation",
        rate: 2,
        durationMs: 22_000,
        cleanup: true,
      });
      expect(s).toMatchObject({ renewal: "automatic", enrolled: 10, renewed: 10, lost: 0, noMessageLost: true, errorsByCode: {} });
      expect(s.received).toBe(s.sent);
      expect(s.certSecondsLeftAtStart as number).toBeLessThanOrEqual(20);
    } finally {
      await shortLived.close();
    }
  });

  it("refuses what a scenario cannot run with before creating anything", async () => {
    const api = new AdminApi({ url: local.apiUrl, ca: local.ca, token: local.adminToken });
    const base = { api, factory: sdkDeviceFactory(), server: local.apiUrl, ca: local.ca, size: 20, workDir, rate: 1, durationMs: 1_000, cleanup: false, prefix: "t-refused-" };
    await expect(runSimulation({ ...base, scenario: "outage" })).rejects.toMatchObject({ code: "SIM_SCENARIO_UNAVAILABLE" });
    await expect(runSimulation({ ...base, scenario: "ota", control: { ota: local.ota }, size: 4 })).rejects.toMatchObject({ code: "SIM_OPTIONS_INVALID" });
    await expect(runSimulation({ ...base, scenario: "steady", prefix: "bad/prefix" })).rejects.toMatchObject({ code: "SIM_OPTIONS_INVALID" });
    expect((await local.app.devices.list({ search: "t-refused-", limit: 10 })).devices).toEqual([]);
  });
});
