/**
 * The device registry over a real store: the device-id rule, the status machine (every pair of states),
 * and the event and change-feed row each change writes in its own transaction.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, forEachDialect, type TestDatabase } from "../../test/helpers/dialects.js";
import { writtenAbout } from "../../test/helpers/written.js";
import { PolicyService } from "../policy/index.js";
import { identityStore, policyStore, type Store } from "../store/index.js";
import { assertDeviceId, isDeviceId } from "./device-id.js";
import { DeviceService } from "./device-service.js";
import { DEVICE_STATUSES, type DeviceStatus } from "./ports.js";

describe("the device-id rule", () => {
  it.each(["a", "0", "sensor-0042", "Floor_3.boiler", "x".repeat(128), "A.b_c-D"])("accepts %j", (id) => {
    expect(isDeviceId(id)).toBe(true);
    expect(() => assertDeviceId(id)).not.toThrow();
  });

  it.each(["", "-lead", ".hidden", "_x", "x".repeat(129), "a/b", "a+b", "a#b", "dev 1", "dév", "a\u0000", "../etc", "a:b", 42, null, undefined])(
    "refuses %j with DEVICE_ID_INVALID",
    (id) => {
      expect(isDeviceId(id)).toBe(false);
      expect(() => assertDeviceId(id)).toThrow(expect.objectContaining({ code: "DEVICE_ID_INVALID" }));
    },
  );
});

/** The allowed moves; everything else must be refused. */
const ALLOWED: Record<DeviceStatus, readonly DeviceStatus[]> = {
  pending: ["active", "suspended", "quarantined", "decommissioned"],
  active: ["suspended", "quarantined", "decommissioned"],
  suspended: ["active", "quarantined", "decommissioned"],
  quarantined: ["active", "suspended", "decommissioned"],
  decommissioned: [],
};

forEachDialect("identity: device service", (dialect) => {
  let db: TestDatabase;
  let store: Store;
  let devices: DeviceService;
  let n = 0;
  /** A device brought to `status` (pending may go anywhere). */
  const deviceIn = async (status: DeviceStatus): Promise<string> => {
    const id = `dev-${++n}`;
    await devices.create({ id }, "test");
    if (status !== "pending") await devices.setStatus(id, status, "test");
    return id;
  };

  beforeAll(async () => {
    db = await createTestDatabase(dialect);
    store = await db.openStore();
    const policy = new PolicyService(policyStore(store));
    devices = new DeviceService(identityStore(store), (role) => policy.isDeviceRole(role));
  });

  afterAll(async () => {
    await store?.close();
    await db?.cleanup();
  });

  it("creates a device with one device.created event and one device.created feed row", async () => {
    const device = await devices.create({ id: "new-1", group: "boilers", attributes: { floor: "3" } }, "alice");
    expect(device).toMatchObject({ id: "new-1", name: "new-1", group: "boilers", role: "device", status: "pending", lastSeenAt: null });
    expect(await devices.get("new-1")).toEqual(device);
    const written = await writtenAbout(store, "new-1");
    expect(written.events).toEqual([{ type: "device.created", severity: "info", actor: "alice", data: { group: "boilers", role: "device", status: "pending" } }]);
    expect(written.changes).toEqual([{ kind: "device.created", data: { role: "device", group: "boilers", status: "pending" } }]);
  });

  it("refuses a bad id, a duplicate and a non-initial status, writing nothing", async () => {
    await expect(devices.create({ id: "bad/id" }, "test")).rejects.toMatchObject({ code: "DEVICE_ID_INVALID" });
    await expect(devices.create({ id: "new-1" }, "test")).rejects.toMatchObject({ code: "DEVICE_EXISTS" });
    await expect(devices.create({ id: "new-2", status: "suspended" as "active" }, "test")).rejects.toMatchObject({ code: "VALIDATION_FAILED" });
    await expect(devices.create({ id: "new-2", role: "admin" }, "test")).rejects.toMatchObject({ code: "DEVICE_ROLE_INVALID" });
    await expect(devices.get("new-2")).rejects.toMatchObject({ code: "DEVICE_NOT_FOUND" });
    await expect(devices.get("bad/id")).rejects.toMatchObject({ code: "DEVICE_ID_INVALID" });
    expect((await writtenAbout(store, "new-1")).events).toHaveLength(1);
    expect(await writtenAbout(store, "new-2")).toEqual({ changes: [], events: [] });
  });

  for (const from of DEVICE_STATUSES) {
    for (const to of DEVICE_STATUSES) {
      if (from === to) continue;
      const allowed = ALLOWED[from].includes(to);
      it(`${from} → ${to} is ${allowed ? "allowed" : "refused"}`, async () => {
        const id = await deviceIn(from);
        const before = await writtenAbout(store, id);
        if (allowed) {
          expect((await devices.setStatus(id, to, "bob", "test reason")).status).toBe(to);
          const after = await writtenAbout(store, id);
          expect(after.changes.slice(before.changes.length)).toEqual([{ kind: "device.status", data: { from, to } }]);
          expect(after.events.slice(before.events.length)).toEqual([
            { type: "device.status_changed", severity: to === "suspended" || to === "quarantined" ? "medium" : "info", actor: "bob", data: { from, to, reason: "test reason" } },
          ]);
        } else {
          await expect(devices.setStatus(id, to, "bob")).rejects.toMatchObject({ code: "DEVICE_STATUS_TRANSITION", detail: { from, to } });
          expect((await devices.get(id)).status).toBe(from);
          expect(await writtenAbout(store, id)).toEqual(before);
        }
      });
    }
  }

  it("the same status again changes and writes nothing", async () => {
    const id = await deviceIn("active");
    const before = await writtenAbout(store, id);
    const device = await devices.setStatus(id, "active", "test");
    expect(device.status).toBe("active");
    expect(await writtenAbout(store, id)).toEqual(before);
  });

  it("refuses an unknown status and an unknown device", async () => {
    const id = await deviceIn("pending");
    await expect(devices.setStatus(id, "retired" as DeviceStatus, "test")).rejects.toMatchObject({ code: "VALIDATION_FAILED" });
    await expect(devices.setStatus("nobody", "active", "test")).rejects.toMatchObject({ code: "DEVICE_NOT_FOUND" });
  });

  it("updates name, group, role and attributes with one feed row naming the fields; a decommissioned device is frozen", async () => {
    const id = await deviceIn("active");
    const before = await writtenAbout(store, id);
    const updated = await devices.update(id, { group: "pumps", attributes: { zone: "b" } }, "test");
    expect(updated).toMatchObject({ group: "pumps", attributes: { zone: "b" } });
    const after = await writtenAbout(store, id);
    expect(after.changes.slice(before.changes.length)).toEqual([{ kind: "device.updated", data: { fields: ["group", "attributes"] } }]);
    await expect(devices.update(id, { role: "Not A Role" }, "test")).rejects.toMatchObject({ code: "VALIDATION_FAILED" });
    await devices.setStatus(id, "decommissioned", "test");
    await expect(devices.update(id, { name: "again" }, "test")).rejects.toMatchObject({ code: "DEVICE_STATUS_TRANSITION" });
    expect((await devices.get(id)).name).toBe(id);
  });
});
