import { afterAll, beforeAll, expect, it } from "vitest";
import { isMoatError } from "../../src/errors.js";
import { isDeviceRoleIn } from "../../src/policy/index.js";
import { DeviceService } from "../../src/identity/index.js";
import { ScanService, toScanResult, type ScannerStore } from "../../src/scanner/index.js";
import { identityStore, policyStore, KyselyDeviceAddressLookup, KyselyScanRepository, scannerStore, type Store } from "../../src/store/index.js";
import { createTestDatabase, forEachDialect, type TestDatabase } from "../helpers/dialects.js";
import { startAedesFixture, type Fixture } from "./fixtures.js";

const FAST = { bannerWaitMs: 500, probeTimeoutMs: 1500, portTimeoutMs: 1000, mqttListenMs: 200 } as const;

forEachDialect("scan runs in the store", (dialect) => {
  let db: TestDatabase;
  let store: Store;
  let broker: Fixture;
  let service: ScanService;

  beforeAll(async () => {
    db = await createTestDatabase(dialect);
    store = await db.openStore();
    broker = await startAedesFixture();
    service = new ScanService(scannerStore(store), { allowedTargets: ["127.0.0.0/8"] });
    const devices = new DeviceService(identityStore(store), (role) => isDeviceRoleIn(policyStore(store).roles, role));
    for (const id of ["gateway-old", "gateway-new", "elsewhere"]) await devices.create({ id, group: null, attributes: {}, status: "active" }, "test");
    // The address was reused: the device seen there last owns the findings.
    await identityStore(store).devices.recordSeen([
      { id: "gateway-old", at: "2026-01-01T00:00:00.000Z", address: "127.0.0.1" },
      { id: "gateway-new", at: "2026-06-01T00:00:00.000Z", address: "::ffff:127.0.0.1" },
      { id: "elsewhere", at: "2026-06-02T00:00:00.000Z", address: "127.0.0.2" },
    ]);
  });

  afterAll(async () => {
    await broker?.close();
    await store?.close();
    await db?.cleanup();
  });

  it("stores the run and its findings, linked to the device last seen at the address", async () => {
    const scan = await service.run({ targets: ["127.0.0.1"], ports: String(broker.port), actor: "cli:test", ...FAST });
    expect(scan.id).toMatch(/^scan-[0-9a-f]{16}$/);
    expect(scan.counts.critical).toBe(1);
    expect(scan.findings.map((f) => f.deviceId)).toEqual(scan.findings.map(() => "gateway-new"));

    const again = await service.get(scan.id);
    expect(again.findings).toEqual(scan.findings);
    expect(again.result.hosts[0]!.ports[0]!.service?.name).toBe("mqtt");
    expect(toScanResult(again).findings.map((f) => f.id).sort()).toEqual(["mqtt-anonymous", "mqtt-anonymous-read-all", "mqtt-anonymous-read-sys", "mqtt-plaintext"]);

    const listed = await service.list();
    expect(listed[0]).toMatchObject({ id: scan.id, actor: "cli:test", openPorts: 1, counts: { critical: 1, high: 2, medium: 1, low: 0, info: 0 } });
    expect((await service.list({ deviceId: "gateway-new" })).map((r) => r.id)).toContain(scan.id);
    expect(await service.list({ deviceId: "elsewhere" })).toEqual([]);
  });

  it("emits scan.finding for each critical finding and scan.run for the run", async () => {
    const events = await store.db.selectFrom("audit_events").selectAll().where("type", "like", "scan.%").orderBy("seq", "asc").execute();
    const finding = events.find((e) => e.type === "scan.finding")!;
    expect(finding).toMatchObject({ severity: "critical", subject: "gateway-new", actor: "cli:test" });
    expect(JSON.parse(finding.data)).toMatchObject({ rule: "mqtt-anonymous-read-all", port: broker.port, deviceId: "gateway-new" });
    expect(events.filter((e) => e.type === "scan.finding")).toHaveLength(1);
    expect(events.some((e) => e.type === "scan.run")).toBe(true);
  });

  it("refuses targets outside the configured scope unless --allow widens it, storing nothing", async () => {
    const before = (await service.list()).length;
    await expect(service.run({ targets: ["::1"], ports: "1", actor: "t" })).rejects.toMatchObject({ code: "SCAN_TARGET_OUT_OF_SCOPE" });
    const widened = await service.run({ targets: ["::1"], ports: "1", allow: ["::1/128"], actor: "t", detectServices: false });
    expect(widened.status).toBe("completed");
    expect((await service.list()).length).toBe(before + 1);
  });

  it("leaves nothing behind when storing fails half-way", async () => {
    const failing: ScannerStore = {
      ...scannerStore(store),
      transact: (fn) =>
        store.transaction((tx) => {
          const scans = new KyselyScanRepository(tx.db);
          return fn({
            scans: Object.assign(Object.create(scans) as KyselyScanRepository, { insertFindings: async () => Promise.reject(new Error("disk full")) }),
            devices: new KyselyDeviceAddressLookup(tx.db),
            events: tx.events,
          });
        }),
    };
    const before = (await service.list()).length;
    const scan = await service.run({ targets: ["127.0.0.1"], ports: String(broker.port), actor: "t", ...FAST });
    await expect(new ScanService(failing, { allowedTargets: ["127.0.0.0/8"] }).record(toScanResult(scan), "t")).rejects.toThrow("disk full");
    expect((await service.list()).length).toBe(before + 1);
  });

  it("answers SCAN_NOT_FOUND for unknown and malformed ids", async () => {
    for (const id of ["scan-0000000000000000", "'; drop table scan_runs; --"]) {
      let caught: unknown;
      await service.get(id).catch((error: unknown) => (caught = error));
      expect(isMoatError(caught, "SCAN_NOT_FOUND")).toBe(true);
    }
  });
});
