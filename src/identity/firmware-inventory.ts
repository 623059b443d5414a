/**
 * The per-device firmware inventory: the version and security version a device last reported running,
 * from the OTA client after a boot or from the device SDK at start. It is what the device says, not a
 * verified fact: detection and posture compare it with the group's minimum security version, and a
 * device with no report yet is left out of those checks rather than guessed at.
 */
import { MoatError } from "../errors.js";
import { pageLimit } from "../lib/page.js";
import { assertDeviceId } from "./device-id.js";
import type { FirmwareInventoryRecord, IdentityStore } from "./ports.js";

/** Semantic versions and vendor build strings alike: printable, short, no spaces. */
const VERSION = /^[0-9A-Za-z][0-9A-Za-z.+_~-]{0,63}$/;

export interface FirmwareReport {
  version: string;
  securityVersion: number;
}

export function checkFirmwareReport(report: unknown): FirmwareReport {
  const { version, securityVersion } = (typeof report === "object" && report !== null ? report : {}) as Record<string, unknown>;
  if (typeof version !== "string" || !VERSION.test(version))
    throw new MoatError("FIRMWARE_REPORT_INVALID", `firmware version ${JSON.stringify(version)} is not 1-64 of A-Z a-z 0-9 . + _ ~ -`);
  if (typeof securityVersion !== "number" || !Number.isSafeInteger(securityVersion) || securityVersion < 0)
    throw new MoatError("FIRMWARE_REPORT_INVALID", `firmware security version ${JSON.stringify(securityVersion)} is not a non-negative integer`);
  return { version, securityVersion };
}

export class FirmwareInventoryService {
  constructor(
    private readonly store: IdentityStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Records what a device reports running. A report that repeats the last one only moves `reportedAt`;
   * a change also writes a `device.firmware_reported` event (severity medium when the security version
   * went down, which anti-rollback should have prevented).
   */
  async report(deviceId: string, report: { version: unknown; securityVersion: unknown }, source: FirmwareInventoryRecord["source"]): Promise<FirmwareInventoryRecord> {
    assertDeviceId(deviceId);
    const { version, securityVersion } = checkFirmwareReport(report);
    return this.store.transact(async (uow) => {
      if (!(await uow.devices.get(deviceId))) throw new MoatError("DEVICE_NOT_FOUND", `no device ${deviceId}`);
      const previous = await uow.firmwareInventory.get(deviceId, { forUpdate: true });
      const record: FirmwareInventoryRecord = { deviceId, version, securityVersion, reportedAt: this.now().toISOString(), source };
      await uow.firmwareInventory.upsert(record);
      if (!previous || previous.version !== version || previous.securityVersion !== securityVersion) {
        const downgrade = previous !== undefined && securityVersion < previous.securityVersion;
        await uow.events.append({
          type: "device.firmware_reported",
          severity: downgrade ? "medium" : "info",
          actor: `device:${deviceId}`,
          subject: deviceId,
          data: { version, securityVersion, source, previous: previous ? { version: previous.version, securityVersion: previous.securityVersion } : null },
        });
      }
      return record;
    });
  }

  /** The device's last report; null when it has not reported yet. */
  async get(deviceId: string): Promise<FirmwareInventoryRecord | null> {
    assertDeviceId(deviceId);
    const record = await this.store.firmwareInventory.get(deviceId);
    if (record) return record;
    if (!(await this.store.devices.get(deviceId))) throw new MoatError("DEVICE_NOT_FOUND", `no device ${deviceId}`);
    return null;
  }

  /**
   * Firmware across the fleet: devices per version (the 100 most common), and the share of reporting
   * devices on the highest security version any device reports.
   */
  async summary(): Promise<{ reported: number; versions: { version: string; securityVersion: number; count: number }[]; latestSecurityVersion: number | null; onLatest: number; latestSecurityShare: number }> {
    const versions = await this.store.firmwareInventory.versions(100);
    const reported = versions.reduce((a, v) => a + v.count, 0);
    const latest = versions.length ? Math.max(...versions.map((v) => v.securityVersion)) : null;
    const onLatest = versions.filter((v) => v.securityVersion === latest).reduce((a, v) => a + v.count, 0);
    return { reported, versions, latestSecurityVersion: latest, onLatest, latestSecurityShare: reported ? Math.round((onLatest / reported) * 1000) / 10 : 0 };
  }

  /** Every device's last report, a page at a time (keyset: pass `next` as `after`). */
  async list(options: { after?: string; limit?: number } = {}): Promise<{ inventory: FirmwareInventoryRecord[]; next: string | null }> {
    const limit = pageLimit(options.limit, 100);
    const rows = await this.store.firmwareInventory.list({ ...(options.after ? { after: options.after } : {}), limit: limit + 1 });
    const page = rows.slice(0, limit);
    return { inventory: page, next: rows.length > limit ? page[page.length - 1]!.deviceId : null };
  }
}
