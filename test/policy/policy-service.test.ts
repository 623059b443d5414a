import { afterAll, beforeAll, expect, it } from "vitest";
import { PolicyService } from "../../src/policy/index.js";
import { policyStore, type Store } from "../../src/store/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { forEachDialect } from "../helpers/dialects.js";

/** Waits (bounded) until `check` holds; the change feed is polled every 50 ms in tests. */
async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

forEachDialect("policy service over the store", (dialect) => {
  let t: TestApp;
  let other: Store;
  let follower: PolicyService;
  let stopFollowing: () => void;

  beforeAll(async () => {
    t = await createTestApp(dialect);
    await t.app.devices.create({ id: "s1", group: "boilers", status: "active", attributes: { room: "kitchen" } }, "test");
    await t.app.devices.create({ id: "s2", group: "boilers", status: "active" }, "test");
    // A second store and service on the same database: another process (CLI, another node).
    other = await t.database.openStore();
    follower = new PolicyService(policyStore(other));
    await follower.reload();
    stopFollowing = other.subscribe((change) => void follower.applyChange(change));
  });
  afterAll(async () => {
    stopFollowing();
    await other.close();
    await t.cleanup();
  });

  it("moat init stored the built-in roles, with events and a feed row", async () => {
    const roles = await t.app.policy.listRoles();
    expect(roles.filter((r) => r.builtin).map((r) => [r.name, r.createdAt !== ""])).toEqual([
      ["device", true],
      ["quarantine", true],
      ["admin", true],
      ["operator", true],
      ["auditor", true],
    ]);
    const events = await t.app.store.db.selectFrom("audit_events").select(["type", "subject"]).where("type", "=", "role.created").execute();
    expect(events).toEqual([{ type: "role.created", subject: "device,quarantine,admin,operator,auditor" }]);
  });

  it("new devices get the device role; the simulator names the deciding rule", async () => {
    const allowed = await t.app.policy.explain("s1", "publish", "devices/s1/telemetry/temp");
    expect(allowed).toMatchObject({ allow: true, rule: { role: "device", index: 0 }, roles: ["device"] });
    expect(await t.app.policy.checkPermission("s1", "devices/s2/telemetry/temp", "publish")).toBe(false);
    expect(await t.app.policy.checkPermission("s1", "devices/s1/commands/#", "subscribe")).toBe(true);
  });

  it("createRole writes the role, an event and a change-feed row in one transaction", async () => {
    const before = await t.app.store.latestSeq();
    const role = await t.app.policy.createRole(
      "boiler",
      [
        { resource: "plant/${device.group}/alarms", action: "subscribe" },
        { effect: "allow", action: "publish", resource: "plant/${device.group}/${device.id}/#" },
        { effect: "deny", action: "publish", resource: "plant/+/+/secret" },
        { effect: "allow", action: "subscribe", resource: "rooms/${device.attr.room}/#" },
      ],
      "test",
      { description: "boiler controllers" },
    );
    expect(role).toMatchObject({ name: "boiler", builtin: false, rules: [{ effect: "allow", action: "subscribe" }, {}, {}, {}] });
    const feed = await t.app.store.changesAfter(before);
    expect(feed.map((c) => [c.kind, c.subject])).toEqual([["policy.changed", "boiler"]]);
    const event = await t.app.store.db.selectFrom("audit_events").select(["type", "actor"]).where("subject", "=", "boiler").executeTakeFirst();
    expect(event).toEqual({ type: "role.created", actor: "test" });
  });

  it("rejects bad roles and writes nothing", async () => {
    const before = await t.app.store.latestSeq();
    const attempts: [() => Promise<unknown>, string][] = [
      [() => t.app.policy.createRole("boiler", [], "test"), "ROLE_EXISTS"],
      [() => t.app.policy.createRole("admin", [], "test"), "ROLE_BUILTIN"],
      [() => t.app.policy.createRole("Bad Name", [], "test"), "ROLE_NAME_INVALID"],
      [() => t.app.policy.createRole("broken", [{ action: "publish", resource: "a/#/b" }], "test"), "POLICY_RULE_INVALID"],
      [() => t.app.policy.createRole("broken", [{ action: "publish", resource: "x/${device.secret}" }], "test"), "POLICY_RULE_INVALID"],
      [() => t.app.policy.deleteRole("device", "test"), "ROLE_BUILTIN"],
      [() => t.app.policy.deleteRole("ghost", "test"), "ROLE_NOT_FOUND"],
      [() => t.app.policy.assignRole("ghost", { kind: "device", target: "s1" }, "test"), "ROLE_NOT_FOUND"],
      [() => t.app.policy.assignRole("boiler", { kind: "device", target: "nope" }, "test"), "DEVICE_NOT_FOUND"],
      [() => t.app.policy.assignRole("auditor", { kind: "token", target: "nope" }, "test"), "TOKEN_NOT_FOUND"],
      [() => t.app.policy.assignRole("boiler", { kind: "group", target: "a/b" }, "test"), "VALIDATION_FAILED"],
      [() => t.app.policy.assignRole("boiler", { kind: "device", target: "a/b" }, "test"), "DEVICE_ID_INVALID"],
      [() => t.app.policy.unassignRole("boiler", { kind: "device", target: "-x" }, "test"), "DEVICE_ID_INVALID"],
      [() => t.app.policy.unassignRole("boiler", { kind: "group", target: "nobody" }, "test"), "ROLE_ASSIGNMENT_NOT_FOUND"],
      [() => t.app.policy.explain("s1", "publish", "a/#"), "POLICY_TOPIC_INVALID"],
      [() => t.app.policy.explain("s1", "delete", "a"), "VALIDATION_FAILED"],
      [() => t.app.policy.explain("ghost", "publish", "a"), "DEVICE_NOT_FOUND"],
    ];
    for (const [attempt, code] of attempts) await expect(attempt()).rejects.toMatchObject({ code });
    expect(await t.app.store.latestSeq()).toBe(before);
    expect((await t.app.policy.listRoles()).map((r) => r.name)).not.toContain("broken");
  });

  it("group and device roles unite; explicit deny wins; hostile attributes grant nothing", async () => {
    const assigned = await t.app.policy.assignRole("boiler", { kind: "group", target: "boilers" }, "test");
    expect(assigned.created).toBe(true);
    expect((await t.app.policy.assignRole("boiler", { kind: "group", target: "boilers" }, "test")).created).toBe(false);
    const check = (device: string, action: string, topic: string) => t.app.policy.explain(device, action, topic);
    expect(await check("s1", "publish", "plant/boilers/s1/temp")).toMatchObject({ allow: true, roles: ["device", "boiler"], rule: { role: "boiler" } });
    expect(await check("s1", "publish", "devices/s1/events/boot")).toMatchObject({ allow: true, rule: { role: "device" } });
    expect(await check("s1", "publish", "plant/boilers/s1/secret")).toMatchObject({ allow: false, rule: { role: "boiler", index: 2, effect: "deny" } });
    expect((await check("s1", "subscribe", "rooms/kitchen/#")).allow).toBe(true);
    await t.app.devices.update("s1", { attributes: { room: "+" } }, "test");
    expect((await check("s1", "subscribe", "rooms/+/#")).allow).toBe(false);
    expect((await check("s1", "subscribe", "rooms/#")).allow).toBe(false);
    await t.app.devices.update("s1", { attributes: { room: "kitchen" } }, "test");
  });

  it("quarantine overrides every role until the device is reactivated", async () => {
    await t.app.devices.setStatus("s2", "quarantined", "test");
    expect(await t.app.policy.explain("s2", "publish", "plant/boilers/s2/temp")).toMatchObject({ allow: false, roles: ["quarantine"] });
    expect(await t.app.policy.explain("s2", "publish", "devices/s2/status")).toMatchObject({ allow: true, rule: { role: "quarantine" } });
    await t.app.devices.setStatus("s2", "active", "test");
    expect((await t.app.policy.explain("s2", "publish", "plant/boilers/s2/temp")).allow).toBe(true);
  });

  it("another process's engine follows the change feed", async () => {
    const subject = { id: "s2", group: "boilers", status: "active" };
    await eventually(() => follower.decide(subject, "publish", "plant/boilers/s2/x").allow);
    await t.app.policy.unassignRole("boiler", { kind: "group", target: "boilers" }, "test");
    await eventually(() => !follower.decide(subject, "publish", "plant/boilers/s2/x").allow);
    await t.app.policy.assignRole("boiler", { kind: "device", target: "s2" }, "test");
    await eventually(() => follower.decide(subject, "publish", "plant/boilers/s2/x").allow);
    const kinds = (await t.app.store.changesAfter(0)).filter((c) => c.kind === "role.assignment").map((c) => c.data?.op);
    expect(kinds).toEqual(["assigned", "unassigned", "assigned"]);
  });

  it("operator roles: token assignments add to the registry role", async () => {
    await t.app.tokens.create({ name: "viewer", role: "auditor" }, "test");
    expect(t.app.policy.allowsToken({ name: "viewer", role: "auditor" }, "devices:write")).toBe(false);
    await t.app.policy.createRole("device-writer", [{ action: "devices:write", resource: "*" }], "test");
    await t.app.policy.assignRole("device-writer", { kind: "token", target: "viewer" }, "test");
    expect(t.app.policy.operatorRolesOf({ name: "viewer", role: "auditor" })).toEqual(["auditor", "device-writer"]);
    expect(t.app.policy.allowsToken({ name: "viewer", role: "auditor" }, "devices:write")).toBe(true);
    expect(t.app.policy.allowsToken({ name: "viewer", role: "auditor" }, "roles:write")).toBe(false);
    expect(await t.app.policy.isOperatorRole("device-writer")).toBe(true);
    expect(await t.app.policy.isOperatorRole("boiler")).toBe(false);
  });

  it("lint counts holders and flags shared or over-broad rules", async () => {
    await t.app.policy.createRole("noisy", [{ action: "publish", resource: "#" }, { action: "publish", resource: "fleet/alerts" }], "test");
    await t.app.policy.assignRole("noisy", { kind: "group", target: "boilers" }, "test");
    const findings = await t.app.policy.lint();
    expect(findings.filter((f) => f.role === "noisy").map((f) => [f.severity, f.code])).toEqual([
      ["high", "matches-everything"],
      ["medium", "shared-topic"],
    ]);
    expect(findings.filter((f) => f.role === "device")).toEqual([]);
  });

  it("deleting a role removes its assignments; a registry role in use is refused", async () => {
    await t.app.devices.create({ id: "s3", role: "noisy", status: "active" }, "test");
    await expect(t.app.policy.deleteRole("noisy", "test")).rejects.toMatchObject({ code: "ROLE_IN_USE" });
    await t.app.devices.update("s3", { role: "device" }, "test");
    const deleted = await t.app.policy.deleteRole("noisy", "test");
    expect(deleted.removedAssignments.map((a) => `${a.kind}:${a.target}`)).toEqual(["group:boilers"]);
    expect(await t.app.policy.assignRole("device", { kind: "device", target: "s3" }, "test")).toMatchObject({ created: true });
    expect((await t.app.store.db.selectFrom("role_assignments").select("role").where("role", "=", "noisy").execute()).length).toBe(0);
  });
});
