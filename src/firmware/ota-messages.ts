import { MoatError } from "../errors.js";
import { parseDeviceReport, type OtaMessage } from "./campaign.js";
import type { OtaNotifier } from "./ports.js";

/** Where Moat tells a device about an update (QoS 1, not retained: a stale offer must not linger). */
export function otaTopic(deviceId: string): string {
  return `devices/${deviceId}/ota`;
}

/** Where a device reports, among its other status messages. */
export function statusTopic(deviceId: string): string {
  return `devices/${deviceId}/status`;
}

/** An OTA progress report as a device publishes it on its status topic. */
export interface OtaStatusMessage {
  type: "ota.status";
  campaignId: string;
  /** `downloading`, `verified`, `installed`, `booted`, `failed:<reason>` or `rolled-back`. */
  status: string;
}

export function encodeOtaMessage(message: OtaMessage | OtaStatusMessage): Buffer {
  return Buffer.from(JSON.stringify(message));
}

const MAX_STATUS_BYTES = 1024;
const CAMPAIGN_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Reads a status-topic payload. Returns undefined for status messages that are not about OTA (the
 * topic carries other reports too); throws `OTA_STATUS_INVALID` for a malformed OTA report.
 */
export function parseOtaStatusMessage(payload: Uint8Array): OtaStatusMessage | undefined {
  if (payload.length > MAX_STATUS_BYTES) throw new MoatError("OTA_STATUS_INVALID", `an OTA status message is at most ${MAX_STATUS_BYTES} bytes`);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload).toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || (value as { type?: unknown }).type !== "ota.status") return undefined;
  const { campaignId, status } = value as Record<string, unknown>;
  if (typeof campaignId !== "string" || !CAMPAIGN_ID.test(campaignId) || typeof status !== "string")
    throw new MoatError("OTA_STATUS_INVALID", "an OTA status message needs a campaignId and a status");
  parseDeviceReport(status);
  return { type: "ota.status", campaignId, status };
}

/**
 * What a device says it runs, published on its status topic by the device SDK at start (and by anyone
 * after a manual flash): `{"type":"firmware.inventory","version":"1.4.2","securityVersion":7}`.
 */
export interface FirmwareInventoryMessage {
  type: "firmware.inventory";
  version: string;
  securityVersion: number;
}

/**
 * Reads a status-topic payload as a firmware inventory report. Undefined for other status messages;
 * the fields are checked by the inventory itself (FIRMWARE_REPORT_INVALID).
 */
export function parseFirmwareInventoryMessage(payload: Uint8Array): { version: unknown; securityVersion: unknown } | undefined {
  if (payload.length > MAX_STATUS_BYTES) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(payload).toString("utf8"));
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || (value as { type?: unknown }).type !== "firmware.inventory") return undefined;
  const { version, securityVersion } = value as Record<string, unknown>;
  return { version, securityVersion };
}

/** An {@link OtaNotifier} over any MQTT publish function (the broker's in-process publish, or an mqtt.js client). */
export function mqttOtaNotifier(publish: (topic: string, payload: Buffer) => Promise<void>): OtaNotifier {
  return { notify: (deviceId, message) => publish(otaTopic(deviceId), encodeOtaMessage(message)) };
}
