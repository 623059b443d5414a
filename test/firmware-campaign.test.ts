import { describe, expect, it } from "vitest";
import { isMoatError } from "../src/errors.js";
import {
  abortCampaign,
  createCampaign,
  parseFailureRate,
  parseStages,
  pauseCampaign,
  reportDeviceStatus,
  resumeCampaign,
  summarizeCampaign,
  type Campaign,
  type CampaignTransition,
} from "../src/firmware/index.js";

const release = { hardwareId: "sensor-v2", version: "2.0.0", securityVersion: 2, imageTarget: "sensor-v2/2.0.0/image.bin", manifestTarget: "sensor-v2/2.0.0/manifest.json" };
const now = new Date("2026-11-25T12:00:00Z");
const fleet = Array.from({ length: 40 }, (_, i) => `dev-${String(i).padStart(2, "0")}`);

/** A simulated device: follows the OTA protocol and reports each step, or fails at one. */
function runDevice(campaign: Campaign, deviceId: string, fails: ReadonlySet<string>, log: CampaignTransition[]): Campaign {
  const steps = fails.has(deviceId) ? ["downloading", "failed:FIRMWARE_DIGEST_MISMATCH"] : ["downloading", "verified", "installed", "booted"];
  let current = campaign;
  for (const status of steps) {
    const step = reportDeviceStatus(current, deviceId, status, now);
    log.push(step);
    current = step.campaign;
  }
  return current;
}

/** Lets every notified device run, in order, until nothing new is notified or the campaign stops. */
function drive(start: CampaignTransition, fails: ReadonlySet<string>): { campaign: Campaign; log: CampaignTransition[] } {
  const log: CampaignTransition[] = [start];
  let campaign = start.campaign;
  const queue = start.notifications.map((n) => n.deviceId);
  while (queue.length > 0 && campaign.status === "running") {
    const deviceId = queue.shift()!;
    const before = log.length;
    campaign = runDevice(campaign, deviceId, fails, log);
    for (const step of log.slice(before)) queue.push(...step.notifications.filter((n) => n.message.type === "ota.update").map((n) => n.deviceId));
  }
  return { campaign, log };
}

const eventTypes = (log: CampaignTransition[]) => log.flatMap((step) => step.events.map((e) => e.type));

describe("OTA campaign state machine", () => {
  it("parses stages and failure rates strictly", () => {
    expect(parseStages("5,25,100")).toEqual([5, 25, 100]);
    expect(parseFailureRate("5%")).toBe(5);
    for (const bad of ["25,5,100", "5,25", "0,100", "5,5,100", "5,abc,100", ""])
      expect(() => parseStages(bad), bad).toThrow(expect.objectContaining({ code: "OTA_STAGES_INVALID" }));
    for (const bad of ["-1%", "101", "five"]) expect(() => parseFailureRate(bad), bad).toThrow(expect.objectContaining({ code: "OTA_FAILURE_RATE_INVALID" }));
  });

  it("opens 5% first, advances through 25% and 100% as devices succeed, and completes", () => {
    const start = createCampaign({ id: "c1", group: "lab", deviceIds: fleet, release, stages: [5, 25, 100], maxFailureRate: 5, now });
    expect(start.notifications).toHaveLength(2); // ceil(40 × 5%)
    expect(start.notifications[0]!.message).toMatchObject({ type: "ota.update", campaignId: "c1", version: "2.0.0" });
    const { campaign, log } = drive(start, new Set());
    expect(campaign.status).toBe("completed");
    expect(summarizeCampaign(campaign).counts.booted).toBe(40);
    const opened = log.flatMap((s) => s.events).filter((e) => e.type === "ota.campaign.stage-opened").map((e) => e.data.devices);
    expect(opened).toEqual([2, 8, 30]);
    expect(eventTypes(log).filter((t) => t.startsWith("ota.campaign."))).toEqual([
      "ota.campaign.created",
      "ota.campaign.stage-opened",
      "ota.campaign.stage-opened",
      "ota.campaign.stage-opened",
      "ota.campaign.completed",
    ]);
    // Every device status change is an event too: 4 per device.
    expect(eventTypes(log).filter((t) => t === "ota.device.status")).toHaveLength(160);
  });

  it("pauses itself when failures pass the threshold, and only new failures pause it again after resume", () => {
    const start = createCampaign({ id: "c2", group: "lab", deviceIds: fleet, release, stages: [5, 25, 100], maxFailureRate: 20, now });
    const canaries = start.notifications.map((n) => n.deviceId);
    // One of two canaries fails: 50% > 20%.
    const { campaign, log } = drive(start, new Set([canaries[0]!]));
    expect(campaign.status).toBe("paused");
    expect(campaign.pauseReason).toBe("failure-rate");
    expect(campaign.stage).toBe(0);
    const pause = log.flatMap((s) => s.events).find((e) => e.type === "ota.campaign.paused")!;
    expect(pause).toMatchObject({ severity: "high", data: { reason: "failure-rate", failures: 1, failureRate: 50 } });
    // A paused campaign still records reports from devices already told, but opens no stage.
    const other = canaries[1]!;
    let paused = campaign;
    for (const status of ["downloading", "verified", "installed", "booted"]) paused = reportDeviceStatus(paused, other, status, now).campaign;
    expect(paused.stage).toBe(0);
    expect(paused.status).toBe("paused");
    // The operator accepts the failure: the next stage opens at once.
    const resumed = resumeCampaign(paused, now);
    expect(resumed.campaign.status).toBe("running");
    expect(resumed.campaign.stage).toBe(1);
    expect(resumed.notifications).toHaveLength(8);
    // In stage 2 (10 devices opened), 2 more failures → 3/10 = 30% > 20%: paused again.
    const stage2 = resumed.notifications.map((n) => n.deviceId);
    const again = drive(resumed, new Set([stage2[0]!, stage2[1]!]));
    expect(again.campaign.status).toBe("paused");
    expect(summarizeCampaign(again.campaign).failures).toBe(3);
  });

  it("does not pause while failures stay under the threshold", () => {
    const start = createCampaign({ id: "c3", group: "lab", deviceIds: fleet, release, stages: [50, 100], maxFailureRate: 10, now });
    const firstStage = start.notifications.map((n) => n.deviceId);
    const { campaign } = drive(start, new Set([firstStage[0]!])); // 1/20 = 5% ≤ 10%
    expect(campaign.status).toBe("completed");
    expect(summarizeCampaign(campaign).counts.failed).toBe(1);
  });

  it("supports operator pause, resume and abort, refusing impossible transitions", () => {
    const start = createCampaign({ id: "c4", group: "lab", deviceIds: fleet, release, stages: [5, 100], maxFailureRate: 5, now });
    const paused = pauseCampaign(start.campaign, now, "operator:alice");
    expect(paused.events[0]).toMatchObject({ type: "ota.campaign.paused", data: { reason: "operator", actor: "operator:alice" } });
    expect(() => pauseCampaign(paused.campaign, now)).toThrow(expect.objectContaining({ code: "OTA_CAMPAIGN_TRANSITION" }));
    const resumed = resumeCampaign(paused.campaign, now);
    const aborted = abortCampaign(resumed.campaign, now);
    expect(aborted.campaign.status).toBe("aborted");
    expect(aborted.notifications.map((n) => n.message.type)).toEqual(["ota.abort", "ota.abort"]);
    expect(() => resumeCampaign(aborted.campaign, now)).toThrow(expect.objectContaining({ code: "OTA_CAMPAIGN_TRANSITION" }));
  });

  it("refuses reports from devices outside the opened stages and bad statuses", () => {
    const start = createCampaign({ id: "c5", group: "lab", deviceIds: fleet, release, stages: [5, 100], maxFailureRate: 5, now });
    const waiting = start.campaign.devices.find((d) => d.stage === 1)!.deviceId;
    expect(() => reportDeviceStatus(start.campaign, waiting, "downloading", now)).toThrow(expect.objectContaining({ code: "OTA_DEVICE_NOT_IN_CAMPAIGN" }));
    expect(() => reportDeviceStatus(start.campaign, "stranger", "booted", now)).toThrow(expect.objectContaining({ code: "OTA_DEVICE_NOT_IN_CAMPAIGN" }));
    const canary = start.notifications[0]!.deviceId;
    try {
      reportDeviceStatus(start.campaign, canary, "exploded", now);
      expect.unreachable();
    } catch (error) {
      expect(isMoatError(error, "OTA_STATUS_INVALID")).toBe(true);
    }
    const booted = reportDeviceStatus(start.campaign, canary, "booted", now).campaign;
    expect(() => reportDeviceStatus(booted, canary, "downloading", now)).toThrow(expect.objectContaining({ code: "OTA_CAMPAIGN_TRANSITION" }));
  });

  it("refuses an empty group", () => {
    expect(() => createCampaign({ id: "c6", group: "none", deviceIds: [], release, stages: [100], maxFailureRate: 5, now })).toThrow(
      expect.objectContaining({ code: "OTA_GROUP_EMPTY" }),
    );
  });
});
