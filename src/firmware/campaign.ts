import { createHash } from "node:crypto";
import { MoatError } from "../errors.js";

/** Where one device is in a campaign. `booted` is success; `failed` and `rolled-back` are failures. */
export type DeviceOtaStatus = "pending" | "notified" | "downloading" | "verified" | "installed" | "booted" | "failed" | "rolled-back";
export type CampaignStatus = "running" | "paused" | "aborted" | "completed";

/** What is being rolled out: the TUF target paths of the image and its manifest, and their facts. */
export interface CampaignRelease {
  hardwareId: string;
  version: string;
  securityVersion: number;
  imageTarget: string;
  manifestTarget: string;
}

export interface CampaignDevice {
  deviceId: string;
  /** Index of the stage the device belongs to. */
  stage: number;
  status: DeviceOtaStatus;
  reason?: string;
  updatedAt: string;
}

export interface Campaign {
  id: string;
  group: string;
  release: CampaignRelease;
  /** Cumulative percentages of the group, strictly increasing, ending at 100. */
  stages: number[];
  /** Percentage of failed devices (among those in opened stages) above which the campaign pauses itself. */
  maxFailureRate: number;
  status: CampaignStatus;
  /** Index of the highest opened stage. */
  stage: number;
  pauseReason?: "operator" | "failure-rate";
  /** Failures the operator accepted by resuming; only failures beyond these pause again. */
  acknowledgedFailures: number;
  devices: CampaignDevice[];
  createdAt: string;
  updatedAt: string;
}

/** A security event describing one transition; the service appends it to the audit log. */
export interface CampaignEvent {
  type: string;
  severity: "info" | "low" | "medium" | "high";
  subject: string;
  data: Record<string, unknown>;
}

/** What to tell a device on `devices/{id}/ota`. */
export interface OtaNotification {
  deviceId: string;
  message: OtaMessage;
}

export type OtaMessage =
  | ({ type: "ota.update"; campaignId: string } & CampaignRelease)
  | { type: "ota.abort"; campaignId: string };

/** The result of every state-machine step: the new state, its events, and messages to send. */
export interface CampaignTransition {
  campaign: Campaign;
  events: CampaignEvent[];
  notifications: OtaNotification[];
}

const TERMINAL: ReadonlySet<DeviceOtaStatus> = new Set(["booted", "failed", "rolled-back"]);
const PROGRESS: readonly DeviceOtaStatus[] = ["notified", "downloading", "verified", "installed", "booted"];

/** Parses `--stages 5,25,100`: strictly increasing whole percentages from 1 to 100, ending at 100. */
export function parseStages(text: string | readonly number[]): number[] {
  const values = typeof text === "string" ? text.split(",").map((part) => part.trim().replace(/%$/, "")) : text.map(String);
  const stages = values.map(Number);
  const valid =
    stages.length > 0 &&
    stages.length <= 10 &&
    values.every((v) => /^\d{1,3}$/.test(v)) &&
    stages.every((s, i) => s >= 1 && s <= 100 && (i === 0 || s > stages[i - 1]!)) &&
    stages[stages.length - 1] === 100;
  if (!valid) throw new MoatError("OTA_STAGES_INVALID", `stages ${JSON.stringify(text)} must be increasing percentages ending at 100, e.g. 5,25,100`);
  return stages;
}

/** Parses `--max-failure-rate 5%` (or `5`) into a percentage. */
export function parseFailureRate(text: string | number): number {
  const raw = typeof text === "number" ? String(text) : text.trim().replace(/%$/, "");
  const value = Number(raw);
  if (!/^\d{1,3}(\.\d+)?$/.test(raw) || !(value >= 0 && value <= 100))
    throw new MoatError("OTA_FAILURE_RATE_INVALID", `max failure rate ${JSON.stringify(text)} must be a percentage from 0 to 100`);
  return value;
}

/** Parses a device's status report: `downloading`, `verified`, `installed`, `booted`, `failed:<reason>`, `rolled-back`. */
export function parseDeviceReport(text: string): { status: DeviceOtaStatus; reason?: string } {
  if (["downloading", "verified", "installed", "booted", "rolled-back"].includes(text)) return { status: text as DeviceOtaStatus };
  const match = /^failed:([\x20-\x7e]{1,200})$/.exec(text);
  if (match) return { status: "failed", reason: match[1]! };
  throw new MoatError("OTA_STATUS_INVALID", `device status ${JSON.stringify(text.slice(0, 64))} is not one of downloading, verified, installed, booted, failed:<reason>, rolled-back`);
}

/**
 * Starts a campaign over `deviceIds`. Devices are ordered by a hash of campaign and device id, so
 * the first stage is an unbiased sample rather than the alphabetically first devices; stage k
 * covers the first ceil(N × stages[k] / 100) devices.
 */
export function createCampaign(input: {
  id: string;
  group: string;
  deviceIds: readonly string[];
  release: CampaignRelease;
  stages: readonly number[];
  maxFailureRate: number;
  now: Date;
}): CampaignTransition {
  const stages = parseStages(input.stages);
  const maxFailureRate = parseFailureRate(input.maxFailureRate);
  const unique = [...new Set(input.deviceIds)];
  if (unique.length === 0) throw new MoatError("OTA_GROUP_EMPTY", `group "${input.group}" has no devices`);
  const order = (id: string) => createHash("sha256").update(`${input.id}\0${id}`).digest("hex");
  const ordered = unique.map((id) => ({ id, key: order(id) })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const at = input.now.toISOString();
  const devices: CampaignDevice[] = ordered.map(({ id }, index) => ({
    deviceId: id,
    stage: stages.findIndex((pct) => index < Math.ceil((unique.length * pct) / 100)),
    status: "pending",
    updatedAt: at,
  }));
  const campaign: Campaign = {
    id: input.id,
    group: input.group,
    release: { ...input.release },
    stages,
    maxFailureRate,
    status: "running",
    stage: -1,
    acknowledgedFailures: 0,
    devices,
    createdAt: at,
    updatedAt: at,
  };
  const step: CampaignTransition = {
    campaign,
    events: [
      event("ota.campaign.created", "info", campaign, {
        group: input.group,
        devices: devices.length,
        stages,
        maxFailureRate,
        version: input.release.version,
        securityVersion: input.release.securityVersion,
      }),
    ],
    notifications: [],
  };
  openNextStage(step, input.now);
  settle(step, input.now);
  return step;
}

/** Records a device's status report, then pauses, advances or completes the campaign as due. */
export function reportDeviceStatus(current: Campaign, deviceId: string, report: string, now: Date): CampaignTransition {
  const { status, reason } = parseDeviceReport(report);
  const step = begin(current, now);
  const device = step.campaign.devices.find((d) => d.deviceId === deviceId);
  if (!device || device.stage > step.campaign.stage)
    throw new MoatError("OTA_DEVICE_NOT_IN_CAMPAIGN", `device ${deviceId} is not in an opened stage of campaign ${current.id}`);
  if (device.status === status && device.reason === reason) return { campaign: current, events: [], notifications: [] };
  if (TERMINAL.has(device.status))
    throw new MoatError("OTA_CAMPAIGN_TRANSITION", `device ${deviceId} already finished with ${device.status}; report ${report} ignored`);
  if (PROGRESS.indexOf(status) >= 0 && PROGRESS.indexOf(status) < PROGRESS.indexOf(device.status))
    throw new MoatError("OTA_CAMPAIGN_TRANSITION", `device ${deviceId} cannot go back from ${device.status} to ${status}`);
  device.status = status;
  if (reason !== undefined) device.reason = reason;
  device.updatedAt = now.toISOString();
  const failed = status === "failed" || status === "rolled-back";
  step.events.push(event("ota.device.status", failed ? "medium" : "info", step.campaign, { deviceId, status, ...(reason ? { reason } : {}) }, deviceId));
  if (failed && step.campaign.status === "running") {
    const { failures, rate } = failureRate(step.campaign);
    if (failures > step.campaign.acknowledgedFailures && rate > step.campaign.maxFailureRate) {
      step.campaign.status = "paused";
      step.campaign.pauseReason = "failure-rate";
      step.events.push(event("ota.campaign.paused", "high", step.campaign, { reason: "failure-rate", failures, failureRate: round(rate), maxFailureRate: step.campaign.maxFailureRate }));
    }
  }
  settle(step, now);
  return step;
}

/** Operator pause: no new stage opens; devices already told may finish. */
export function pauseCampaign(current: Campaign, now: Date, actor = "operator"): CampaignTransition {
  if (current.status !== "running") throw transition(current, "pause");
  const step = begin(current, now);
  step.campaign.status = "paused";
  step.campaign.pauseReason = "operator";
  step.events.push(event("ota.campaign.paused", "low", step.campaign, { reason: "operator", actor }));
  return step;
}

/** Resume after a pause; the failures so far count as accepted, so only new ones pause again. */
export function resumeCampaign(current: Campaign, now: Date, actor = "operator"): CampaignTransition {
  if (current.status !== "paused") throw transition(current, "resume");
  const step = begin(current, now);
  step.campaign.status = "running";
  delete step.campaign.pauseReason;
  step.campaign.acknowledgedFailures = failureRate(step.campaign).failures;
  step.events.push(event("ota.campaign.resumed", "low", step.campaign, { actor, acknowledgedFailures: step.campaign.acknowledgedFailures }));
  settle(step, now);
  return step;
}

/** Abort: final. Devices told but not finished are told to stop. */
export function abortCampaign(current: Campaign, now: Date, actor = "operator"): CampaignTransition {
  if (current.status === "aborted" || current.status === "completed") throw transition(current, "abort");
  const step = begin(current, now);
  step.campaign.status = "aborted";
  delete step.campaign.pauseReason;
  for (const device of step.campaign.devices)
    if (device.stage <= step.campaign.stage && !TERMINAL.has(device.status))
      step.notifications.push({ deviceId: device.deviceId, message: { type: "ota.abort", campaignId: step.campaign.id } });
  step.events.push(event("ota.campaign.aborted", "medium", step.campaign, { actor, stopped: step.notifications.length }));
  return step;
}

/** Counts per status and the failure rate, for `moat ota status`. */
export function summarizeCampaign(campaign: Campaign): {
  counts: Record<DeviceOtaStatus, number>;
  failures: number;
  failureRate: number;
  openedDevices: number;
  stagePercent: number | null;
} {
  const counts = { pending: 0, notified: 0, downloading: 0, verified: 0, installed: 0, booted: 0, failed: 0, "rolled-back": 0 } as Record<DeviceOtaStatus, number>;
  for (const device of campaign.devices) counts[device.status] += 1;
  const { failures, rate, opened } = failureRate(campaign);
  return { counts, failures, failureRate: round(rate), openedDevices: opened, stagePercent: campaign.stages[campaign.stage] ?? null };
}

function failureRate(campaign: Campaign): { failures: number; rate: number; opened: number } {
  const opened = campaign.devices.filter((d) => d.stage <= campaign.stage);
  const failures = opened.filter((d) => d.status === "failed" || d.status === "rolled-back").length;
  return { failures, rate: opened.length === 0 ? 0 : (failures * 100) / opened.length, opened: opened.length };
}

/** While running and every opened device has finished: open the next stage, or complete. */
function settle(step: CampaignTransition, now: Date): void {
  const campaign = step.campaign;
  while (campaign.status === "running") {
    const opened = campaign.devices.filter((d) => d.stage <= campaign.stage);
    if (!opened.every((d) => TERMINAL.has(d.status))) return;
    if (campaign.stage === campaign.stages.length - 1) {
      campaign.status = "completed";
      const { failures } = failureRate(campaign);
      step.events.push(event("ota.campaign.completed", "info", campaign, { booted: opened.length - failures, failures }));
      return;
    }
    openNextStage(step, now);
  }
}

function openNextStage(step: CampaignTransition, now: Date): void {
  const campaign = step.campaign;
  campaign.stage += 1;
  const at = now.toISOString();
  let count = 0;
  for (const device of campaign.devices) {
    if (device.stage !== campaign.stage) continue;
    device.status = "notified";
    device.updatedAt = at;
    count += 1;
    step.notifications.push({ deviceId: device.deviceId, message: { type: "ota.update", campaignId: campaign.id, ...campaign.release } });
  }
  step.events.push(event("ota.campaign.stage-opened", "info", campaign, { stage: campaign.stage, percent: campaign.stages[campaign.stage], devices: count }));
}

function begin(current: Campaign, now: Date): CampaignTransition {
  const campaign: Campaign = structuredClone(current);
  campaign.updatedAt = now.toISOString();
  return { campaign, events: [], notifications: [] };
}

function event(type: string, severity: CampaignEvent["severity"], campaign: Campaign, data: Record<string, unknown>, subject?: string): CampaignEvent {
  return { type, severity, subject: subject ?? campaign.id, data: { campaignId: campaign.id, ...data } };
}

function transition(campaign: Campaign, verb: string): MoatError {
  return new MoatError("OTA_CAMPAIGN_TRANSITION", `cannot ${verb} campaign ${campaign.id}: it is ${campaign.status}`);
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
