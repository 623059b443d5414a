/**
 * An in-memory device directory and revocation source: the broker's ports without a database, for
 * tests, benchmarks and embedders that keep devices elsewhere.
 */
import { normalizeSerial } from "./cert-auth.js";
import type { DeviceDirectory, DeviceRecord, RevocationSource } from "./ports.js";

export class InMemoryDeviceDirectory implements DeviceDirectory, RevocationSource {
  private readonly devices = new Map<string, DeviceRecord>();
  private readonly revoked = new Set<string>();

  /** `isDeviceId` is the identity domain's rule (its door exports it), so ids are checked as in production. */
  constructor(readonly isDeviceId: (id: string) => boolean) {}

  async get(deviceId: string): Promise<DeviceRecord | null> {
    return this.devices.get(deviceId) ?? null;
  }

  async revokedSerials(): Promise<Iterable<string>> {
    return [...this.revoked];
  }

  /** Adds or replaces a device; missing fields get empty defaults. */
  put(device: Partial<DeviceRecord> & { id: string }): DeviceRecord {
    const record: DeviceRecord = {
      status: "active",
      group: null,
      role: null,
      attributes: {},
      publicKeys: [],
      hmacSecrets: [],
      certSerials: [],
      ...device,
    };
    record.certSerials = record.certSerials.map(normalizeSerial);
    this.devices.set(device.id, record);
    return record;
  }

  update(deviceId: string, change: Partial<Omit<DeviceRecord, "id">>): DeviceRecord {
    const current = this.devices.get(deviceId);
    if (!current) throw new TypeError(`no device ${deviceId}`);
    return this.put({ ...current, ...change, id: deviceId });
  }

  /** Marks a serial revoked and removes it from its device's current certificates. */
  revoke(serial: string): void {
    const normal = normalizeSerial(serial);
    this.revoked.add(normal);
    for (const device of this.devices.values()) {
      if (device.certSerials.includes(normal)) this.put({ ...device, certSerials: device.certSerials.filter((s) => s !== normal) });
    }
  }
}
