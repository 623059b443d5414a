/**
 * Group settings and the firmware inventory over both dialects: the service rules (canonical CIDRs,
 * durations, clearing, no-op patches), the event and feed row each change writes, the CLI
 * (`moat group set|show|list`, `moat device firmware`) as a separate process, and the API routes.
 */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, expect, it } from "vitest";
import { buildApi } from "../../src/api/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { runCli } from "../helpers/cli.js";
import { forEachDialect } from "../helpers/dialects.js";
import { writtenAbout } from "../helpers/written.js";

const settings = { bodyLimitBytes: 65_536, authFailureLimit: 1000, authFailureWindowSeconds: 60 };

forEachDialect("group settings and firmware inventory", (dialect) => {
  let t: TestApp;
  let api: FastifyInstance;
  let operator: string;

  beforeAll(async () => {
    t = await createTestApp(dialect);
    api = await buildApi(t.app, settings);
    operator = (await t.app.tokens.create({ name: "ops", role: "operator" }, "test")).token;
    await t.app.devices.create({ id: "boiler-1", group: "boilers", status: "active" }, "test");
    await t.app.devices.create({ id: "boiler-2", group: "boilers", status: "active" }, "test");
    await t.app.devices.create({ id: "pump-1", group: "pumps", status: "active" }, "test");
  });
  afterAll(async () => {
    await api?.close();
    await t?.cleanup();
  });

  it("a group never configured has every setting null, and its device count", async () => {
    expect(await t.app.groups.get("boilers")).toEqual({
      group: "boilers",
      allowedCidrs: null,
      silenceWindow: null,
      silenceWindowMs: null,
      minSecurityVersion: null,
      devices: 2,
      updatedAt: null,
      updatedBy: null,
    });
  });

  it("sets settings canonically, with one audit event and one feed row; an unchanged patch writes nothing", async () => {
    const set = await t.app.groups.set("boilers", { allowedCidrs: ["10.20.0.0/16", "2001:DB8:20::/48", "10.20.0.0/16"], silenceWindow: "1h", minSecurityVersion: 7 }, "tester");
    expect(set).toMatchObject({ allowedCidrs: ["10.20.0.0/16", "2001:db8:20::/48"], silenceWindow: "1h", silenceWindowMs: 3_600_000, minSecurityVersion: 7, devices: 2, updatedBy: "tester" });
    await t.app.groups.set("boilers", { minSecurityVersion: 7 }, "tester");
    const written = await writtenAbout(t.app.store, "boilers");
    expect(written.changes).toEqual([{ kind: "group.settings", data: { fields: ["allowedCidrs", "silenceWindow", "minSecurityVersion"] } }]);
    expect(written.events).toHaveLength(1);
    expect(written.events[0]).toMatchObject({ type: "group.settings_changed", severity: "medium", actor: "tester" });
    expect(written.events[0]!.data.changes).toMatchObject({ minSecurityVersion: { from: null, to: 7 } });
  });

  it("refuses bad settings with a coded error and changes nothing", async () => {
    const before = await t.app.groups.get("boilers");
    await expect(t.app.groups.set("boilers", { allowedCidrs: ["10.20.0.1/16"] }, "x")).rejects.toMatchObject({ code: "VALIDATION_FAILED", message: expect.stringContaining("10.20.0.0/16") });
    await expect(t.app.groups.set("boilers", { allowedCidrs: ["not-a-net"] }, "x")).rejects.toMatchObject({ code: "VALIDATION_FAILED" });
    await expect(t.app.groups.set("boilers", { allowedCidrs: [] }, "x")).rejects.toMatchObject({ code: "VALIDATION_FAILED" });
    await expect(t.app.groups.set("boilers", { silenceWindow: "1.5h" }, "x")).rejects.toMatchObject({ code: "DURATION_INVALID" });
    await expect(t.app.groups.set("boilers", { minSecurityVersion: -1 }, "x")).rejects.toMatchObject({ code: "VALIDATION_FAILED" });
    await expect(t.app.groups.set("bad/group", { silenceWindow: "1h" }, "x")).rejects.toMatchObject({ code: "VALIDATION_FAILED" });
    expect(await t.app.groups.get("boilers")).toEqual(before);
  });

  it("clearing every setting removes the group's row; the group still lists by its devices", async () => {
    await t.app.groups.set("spare", { silenceWindow: "30m" }, "x");
    expect((await t.app.groups.list()).map((g) => g.group)).toEqual(["boilers", "pumps", "spare"]);
    await t.app.groups.set("spare", { silenceWindow: null }, "x");
    expect(await t.app.groups.configured()).toHaveLength(1);
    expect((await t.app.groups.list()).map((g) => g.group)).toEqual(["boilers", "pumps"]);
  });

  it("records firmware reports; a repeat only moves reportedAt, a downgrade is a medium event", async () => {
    expect(await t.app.firmwareInventory.get("pump-1")).toBeNull();
    const first = await t.app.firmwareInventory.report("pump-1", { version: "1.4.2", securityVersion: 7 }, "sdk");
    expect(first).toMatchObject({ deviceId: "pump-1", version: "1.4.2", securityVersion: 7, source: "sdk" });
    await t.app.firmwareInventory.report("pump-1", { version: "1.4.2", securityVersion: 7 }, "sdk");
    await t.app.firmwareInventory.report("pump-1", { version: "1.3.0", securityVersion: 5 }, "ota");
    expect(await t.app.firmwareInventory.get("pump-1")).toMatchObject({ version: "1.3.0", securityVersion: 5, source: "ota" });
    const events = (await writtenAbout(t.app.store, "pump-1")).events.filter((e) => e.type === "device.firmware_reported");
    expect(events.map((e) => e.severity)).toEqual(["info", "medium"]);
    expect(events[1]!.data).toMatchObject({ previous: { version: "1.4.2", securityVersion: 7 } });
    await expect(t.app.firmwareInventory.report("pump-1", { version: "has space", securityVersion: 1 }, "sdk")).rejects.toMatchObject({ code: "FIRMWARE_REPORT_INVALID" });
    await expect(t.app.firmwareInventory.report("pump-1", { version: "1.0.0", securityVersion: 1.5 }, "sdk")).rejects.toMatchObject({ code: "FIRMWARE_REPORT_INVALID" });
    await expect(t.app.firmwareInventory.report("ghost", { version: "1.0.0", securityVersion: 1 }, "sdk")).rejects.toMatchObject({ code: "DEVICE_NOT_FOUND" });
    expect((await t.app.firmwareInventory.list()).inventory.map((r) => r.deviceId)).toEqual(["pump-1"]);
  });

  it("moat group set|show|list and moat device firmware over the same installation", async () => {
    const set = await runCli([...t.cliArgs, "group", "set", "pumps", "--allowed-cidr", "192.168.7.0/24", "--min-security-version", "3", "--json"]);
    expect(set.stderr).toBe("");
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ group: "pumps", allowedCidrs: ["192.168.7.0/24"], minSecurityVersion: 3, devices: 1 });
    const cleared = await runCli([...t.cliArgs, "group", "set", "pumps", "--clear", "min-security-version", "--json"]);
    expect(JSON.parse(cleared.stdout)).toMatchObject({ allowedCidrs: ["192.168.7.0/24"], minSecurityVersion: null });
    const list = await runCli([...t.cliArgs, "group", "list", "--json"]);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { group: string }[]).map((g) => g.group)).toEqual(["boilers", "pumps"]);
    const show = await runCli([...t.cliArgs, "group", "show", "pumps"]);
    expect(show.stdout).toMatch(/allowedCidrs\s+\["192.168.7.0\/24"\]/);
    const bad = await runCli([...t.cliArgs, "group", "set", "pumps", "--allowed-cidr", "300.1.1.0/24"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error VALIDATION_FAILED/);
    const usage = await runCli([...t.cliArgs, "group", "set", "pumps", "--clear", "everything"]);
    expect(usage.code).toBe(2);
    const firmware = await runCli([...t.cliArgs, "device", "firmware", "pump-1", "--json"]);
    expect(JSON.parse(firmware.stdout)).toMatchObject({ deviceId: "pump-1", version: "1.3.0" });
    const none = await runCli([...t.cliArgs, "device", "firmware", "boiler-1", "--json"]);
    expect(JSON.parse(none.stdout)).toBeNull();
  });

  it("the API reads groups with groups:read and writes them with groups:write only", async () => {
    const list = await api.inject({ url: "/v1/groups", headers: { authorization: `Bearer ${operator}` } });
    expect(list.statusCode).toBe(200);
    expect((list.json() as { group: string }[]).map((g) => g.group)).toContain("boilers");
    const refused = await api.inject({ method: "PUT", url: "/v1/groups/boilers", headers: { authorization: `Bearer ${operator}` }, payload: { minSecurityVersion: 1 } });
    expect(refused.statusCode).toBe(403);
    const put = await api.inject({ method: "PUT", url: "/v1/groups/boilers", headers: { authorization: `Bearer ${t.adminToken}` }, payload: { silenceWindow: null, minSecurityVersion: 9 } });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({ group: "boilers", silenceWindow: null, minSecurityVersion: 9, allowedCidrs: ["10.20.0.0/16", "2001:db8:20::/48"] });
    const bad = await api.inject({ method: "PUT", url: "/v1/groups/boilers", headers: { authorization: `Bearer ${t.adminToken}` }, payload: { allowedCidrs: ["10.0.0.1/8"] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: "VALIDATION_FAILED" });
    const firmware = await api.inject({ url: "/v1/devices/pump-1/firmware", headers: { authorization: `Bearer ${operator}` } });
    expect(firmware.json()).toMatchObject({ deviceId: "pump-1", securityVersion: 5 });
    const none = await api.inject({ url: "/v1/devices/boiler-2/firmware", headers: { authorization: `Bearer ${operator}` } });
    expect(none.statusCode).toBe(200);
    expect(none.body).toBe("null");
  });
});
