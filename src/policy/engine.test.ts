import { describe, expect, it } from "vitest";
import { BUILTIN_ROLES } from "./builtin-roles.js";
import { compilePolicy } from "./engine.js";
import type { Assignment, DeviceSubject, RoleDefinition } from "./model.js";

const sensor: RoleDefinition = {
  name: "sensor",
  rules: [
    { effect: "allow", action: "publish", resource: "sensors/${device.id}/#" },
    { effect: "deny", action: "publish", resource: "sensors/${device.id}/private" },
    { effect: "allow", action: "subscribe", resource: "devices/${device.id}/commands/#" },
    { effect: "deny", action: "subscribe", resource: "devices/+/commands/firmware/#" },
  ],
};
const lineGroup: RoleDefinition = {
  name: "line",
  rules: [
    { effect: "allow", action: "subscribe", resource: "groups/${device.group}/broadcast" },
    { effect: "allow", action: "receive", resource: "groups/${device.group}/broadcast" },
    { effect: "allow", action: "publish", resource: "sites/${device.attr.site}/${device.id}" },
  ],
};
const assignments: Assignment[] = [
  { role: "sensor", kind: "device", target: "d1" },
  { role: "line", kind: "group", target: "line-3" },
  { role: "device", kind: "device", target: "d2" },
  { role: "admin", kind: "token", target: "ops" },
];
const engine = compilePolicy({ roles: [...BUILTIN_ROLES, sensor, lineGroup], assignments });
const d1: DeviceSubject = { id: "d1", group: "line-3", attributes: { site: "berlin" } };
const d2: DeviceSubject = { id: "d2", status: "active" };

describe("decide: built-in device role", () => {
  it.each([
    ["publish", "devices/d2/telemetry/temp", true],
    ["publish", "devices/d2/telemetry", true],
    ["publish", "devices/d2/events/boot", true],
    ["publish", "devices/d3/telemetry/temp", false],
    ["publish", "devices/d2/commands/reboot", false],
    ["subscribe", "devices/d2/commands/#", true],
    ["subscribe", "devices/d2/commands/+", true],
    ["subscribe", "devices/+/commands/#", false],
    ["subscribe", "#", false],
    ["receive", "devices/d2/commands/reboot", true],
    ["receive", "devices/d3/commands/reboot", false],
    ["publish", "$SYS/broker/clients", false],
  ] as const)("%s %s → %s", (action, topic, allow) => {
    expect(engine.decide(d2, action, topic).allow).toBe(allow);
  });

  it("names the deciding rule", () => {
    const decision = engine.decide(d2, "publish", "devices/d2/events/boot");
    expect(decision).toEqual({
      allow: true,
      reason: "rule",
      roles: ["device"],
      rule: { role: "device", index: 1, effect: "allow", action: "publish", resource: "devices/${device.id}/events/#" },
    });
  });

  it("default deny has no rule", () => {
    expect(engine.decide(d2, "publish", "elsewhere")).toMatchObject({ allow: false, rule: null, reason: "no-matching-rule" });
  });
});

describe("decide: deny wins over allow", () => {
  it("a deny rule beats a broader allow on publish", () => {
    expect(engine.decide(d1, "publish", "sensors/d1/temp").allow).toBe(true);
    const denied = engine.decide(d1, "publish", "sensors/d1/private");
    expect(denied.allow).toBe(false);
    expect(denied.rule).toMatchObject({ role: "sensor", index: 1, effect: "deny" });
  });

  it("a SUBSCRIBE request that overlaps a denied filter is refused even when an allow covers it", () => {
    expect(engine.decide(d1, "subscribe", "devices/d1/commands/reboot").allow).toBe(true);
    const denied = engine.decide(d1, "subscribe", "devices/d1/commands/#");
    expect(denied).toMatchObject({ allow: false, rule: { index: 3, effect: "deny" } });
  });

  it("deny in one role beats allow in another role of the same device", () => {
    const roles: RoleDefinition[] = [
      { name: "wide", rules: [{ effect: "allow", action: "publish", resource: "shared/#" }] },
      { name: "narrow", rules: [{ effect: "deny", action: "publish", resource: "shared/+/secret" }] },
    ];
    const e = compilePolicy({
      roles,
      assignments: [
        { role: "wide", kind: "device", target: "x" },
        { role: "narrow", kind: "group", target: "g" },
      ],
    });
    expect(e.decide({ id: "x", group: "g" }, "publish", "shared/a/secret")).toMatchObject({ allow: false, rule: { role: "narrow" } });
    expect(e.decide({ id: "x", group: "g" }, "publish", "shared/a/public").allow).toBe(true);
    expect(e.decide({ id: "x" }, "publish", "shared/a/secret").allow).toBe(true);
  });
});

describe("decide: device and group roles are united", () => {
  it("gets rules from its own role and from its group's role", () => {
    expect(engine.rolesOf(d1)).toEqual(["sensor", "line"]);
    expect(engine.decide(d1, "publish", "sensors/d1/x").rule?.role).toBe("sensor");
    expect(engine.decide(d1, "subscribe", "groups/line-3/broadcast").rule?.role).toBe("line");
    expect(engine.decide(d1, "receive", "groups/line-3/broadcast").allow).toBe(true);
    expect(engine.decide(d1, "publish", "sites/berlin/d1").allow).toBe(true);
  });

  it("a device without the group gets only its own rules", () => {
    const alone = { ...d1, group: null };
    expect(engine.rolesOf(alone)).toEqual(["sensor"]);
    expect(engine.decide(alone, "subscribe", "groups/line-3/broadcast").allow).toBe(false);
  });

  it("a device with no role at all is denied with reason no-roles", () => {
    expect(engine.decide({ id: "nobody" }, "publish", "devices/nobody/telemetry")).toMatchObject({ allow: false, reason: "no-roles" });
  });

  it("operator token assignments do not apply to devices", () => {
    expect(engine.rolesOf({ id: "ops" })).toEqual([]);
  });
});

describe("decide: quarantine override", () => {
  it("a quarantined device has only the quarantine role, whatever else it holds", () => {
    const q = { ...d1, status: "quarantined" };
    expect(engine.rolesOf(q)).toEqual(["quarantine"]);
    expect(engine.decide(q, "publish", "sensors/d1/temp").allow).toBe(false);
    expect(engine.decide(q, "subscribe", "groups/line-3/broadcast").allow).toBe(false);
    expect(engine.decide(q, "publish", "devices/d1/status")).toMatchObject({ allow: true, rule: { role: "quarantine" } });
    expect(engine.decide(q, "publish", "devices/d2/status").allow).toBe(false);
  });

  it("reactivation restores the normal roles", () => {
    expect(engine.decide({ ...d1, status: "active" }, "publish", "sensors/d1/temp").allow).toBe(true);
  });
});

describe("decide: hostile variable values never widen access", () => {
  const e = compilePolicy({
    roles: [
      {
        name: "room",
        rules: [
          { effect: "allow", action: "subscribe", resource: "rooms/${device.attr.room}/#" },
          { effect: "allow", action: "publish", resource: "rooms/${device.attr.room}/state" },
        ],
      },
    ],
    assignments: [{ role: "room", kind: "device", target: "h" }],
  });
  it.each(["+", "#", "a/b", "", "x\u0000", "$SYS"])("attribute room=%j grants nothing", (room) => {
    const h: DeviceSubject = { id: "h", attributes: { room } };
    for (const filter of ["rooms/#", "rooms/+/#", "rooms/a/#", "#", "rooms/+/state"])
      expect(e.decide(h, "subscribe", filter).allow).toBe(false);
    for (const topic of ["rooms/a/state", "rooms/a/b/state", "rooms//state", "rooms/x/state"])
      expect(e.decide(h, "publish", topic).allow).toBe(false);
  });
  it("a normal value works", () => {
    expect(e.decide({ id: "h", attributes: { room: "kitchen" } }, "subscribe", "rooms/kitchen/#").allow).toBe(true);
    expect(e.decide({ id: "h", attributes: { room: "kitchen" } }, "subscribe", "rooms/+/#").allow).toBe(false);
  });
});

describe("decide: invalid requests", () => {
  it.each([
    ["publish", "devices/d2/telemetry/#"],
    ["publish", ""],
    ["receive", "a/+"],
    ["subscribe", "devices/d2/commands/#/x"],
    ["subscribe", "a\u0000"],
  ] as const)("%s %j is denied as invalid-topic", (action, topic) => {
    expect(engine.decide(d2, action, topic)).toMatchObject({ allow: false, reason: "invalid-topic" });
  });

  it("rejects an invalid rule at compile time", () => {
    expect(() =>
      compilePolicy({ roles: [{ name: "bad", rules: [{ effect: "allow", action: "publish", resource: "a/#/b" }] }], assignments: [] }),
    ).toThrowError(expect.objectContaining({ code: "POLICY_RULE_INVALID" }));
  });
});

describe("decide: $-topics [MQTT-4.7.2-1]", () => {
  const e = compilePolicy({
    roles: [
      { name: "wild", rules: [{ effect: "allow", action: "publish", resource: "#" }, { effect: "allow", action: "subscribe", resource: "+/#" }] },
      { name: "sys", rules: [{ effect: "allow", action: "subscribe", resource: "$SYS/broker/+" }] },
    ],
    assignments: [
      { role: "wild", kind: "device", target: "w" },
      { role: "sys", kind: "device", target: "s" },
    ],
  });
  it("'#' and '+' rules do not reach $SYS", () => {
    expect(e.decide({ id: "w" }, "publish", "a/b").allow).toBe(true);
    expect(e.decide({ id: "w" }, "publish", "$SYS/broker/load").allow).toBe(false);
    expect(e.decide({ id: "w" }, "subscribe", "$SYS/#").allow).toBe(false);
    expect(e.decide({ id: "w" }, "subscribe", "a/#").allow).toBe(true);
  });
  it("an explicit $SYS rule does", () => {
    expect(e.decide({ id: "s" }, "subscribe", "$SYS/broker/clients").allow).toBe(true);
    expect(e.decide({ id: "s" }, "subscribe", "$SYS/broker/+").allow).toBe(true);
    expect(e.decide({ id: "s" }, "subscribe", "$SYS/#").allow).toBe(false);
  });
});

describe("decide: wide trie nodes (more literal children than the in-place arrays hold)", () => {
  const rules = [
    ...Array.from({ length: 30 }, (_, i) => ({ effect: "allow" as const, action: "publish", resource: `k${i}/x` })),
    ...Array.from({ length: 12 }, (_, i) => ({ effect: "allow" as const, action: "subscribe", resource: `k${i}/+/y` })),
    { effect: "allow" as const, action: "subscribe", resource: "$k/#" },
    { effect: "deny" as const, action: "publish", resource: "k7/x" },
  ];
  const snapshot = { roles: [{ name: "wide", rules }], assignments: [{ role: "wide", kind: "device" as const, target: "w" }] };
  const e = compilePolicy(snapshot);
  it("agrees with the reference on names and filters", async () => {
    const { referenceDecide } = await import("./reference.js");
    const who = { id: "w" };
    for (const topic of ["k0/x", "k29/x", "k30/x", "k7/x", "k3/x/y", "$k/x"])
      expect(e.decide(who, "publish", topic)).toEqual(referenceDecide(snapshot, who, "publish", topic));
    for (const filter of ["k3/a/y", "k3/+/y", "k11/#", "#", "+/+/y", "$k/#", "$k/+", "k20/a/y"])
      expect(e.decide(who, "subscribe", filter)).toEqual(referenceDecide(snapshot, who, "subscribe", filter));
    expect(e.decide(who, "publish", "k29/x").allow).toBe(true);
    expect(e.decide(who, "subscribe", "$k/+").allow).toBe(true);
  });
});

describe("decide: roles the caller supplies", () => {
  it("are united with the compiled assignments, first, and ignored under quarantine", () => {
    expect(engine.rolesOf({ ...d1, roles: ["device"] })).toEqual(["device", "sensor", "line"]);
    expect(engine.decide({ id: "d9", roles: ["device"] }, "publish", "devices/d9/telemetry/x")).toMatchObject({ allow: true, roles: ["device"] });
    expect(engine.rolesOf({ id: "d9", roles: ["device"], status: "quarantined" })).toEqual(["quarantine"]);
    expect(engine.rolesOf({ ...d1, roles: ["sensor"] })).toEqual(["sensor", "line"]);
  });
});

describe("decide: many roles with rules on the same filter (per-role buckets)", () => {
  const roles: RoleDefinition[] = Array.from({ length: 20 }, (_, i) => ({
    name: `r${i}`,
    rules: [
      { effect: i % 5 === 3 ? ("deny" as const) : ("allow" as const), action: "publish", resource: "shared/x" },
      { effect: "allow" as const, action: "publish", resource: "shared/#" },
    ],
  }));
  it("only the held roles' rules count, and the answer equals the reference", async () => {
    const { referenceDecide } = await import("./reference.js");
    for (const held of [["r0"], ["r3"], ["r1", "r8"], ["r19", "r13"], ["ghost"], []]) {
      const snapshot = { roles, assignments: held.map((role) => ({ role, kind: "device" as const, target: "m" })) };
      const e = compilePolicy(snapshot);
      for (const topic of ["shared/x", "shared/y", "shared"])
        expect([held, topic, e.decide({ id: "m" }, "publish", topic)]).toEqual([held, topic, referenceDecide(snapshot, { id: "m" }, "publish", topic)]);
    }
    const e = compilePolicy({ roles, assignments: [{ role: "r13", kind: "device", target: "m" }, { role: "r1", kind: "device", target: "m" }] });
    expect(e.decide({ id: "m" }, "publish", "shared/x")).toMatchObject({ allow: false, rule: { role: "r13", effect: "deny" } });
  });

  it("refuses a role defined twice", () => {
    expect(() => compilePolicy({ roles: [roles[0]!, roles[0]!], assignments: [] })).toThrowError(expect.objectContaining({ code: "POLICY_RULE_INVALID" }));
  });
});
