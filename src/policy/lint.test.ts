import { describe, expect, it } from "vitest";
import { BUILTIN_ROLES } from "./builtin-roles.js";
import { lintPolicy } from "./lint.js";
import type { RoleDefinition } from "./model.js";

const risky: RoleDefinition = {
  name: "risky",
  rules: [
    { effect: "allow", action: "subscribe", resource: "#" },
    { effect: "allow", action: "publish", resource: "+/#" },
    { effect: "allow", action: "subscribe", resource: "$SYS/#" },
    { effect: "allow", action: "publish", resource: "fleet/alerts" },
    { effect: "allow", action: "receive", resource: "+/+" },
    { effect: "deny", action: "subscribe", resource: "#" },
    { effect: "allow", action: "publish", resource: "devices/${device.id}/x" },
  ],
};

describe("policy lint", () => {
  it("finds nothing in the built-in roles", () => {
    expect(lintPolicy(BUILTIN_ROLES, { holders: new Map([["device", 500]]) })).toEqual([]);
  });

  it("reports each overly permissive allow rule, most severe first", () => {
    const findings = lintPolicy([risky], { holders: new Map([["risky", 40]]) });
    expect(findings.map((f) => [f.severity, f.code, f.index])).toEqual([
      ["high", "matches-everything", 0],
      ["high", "matches-everything", 1],
      ["high", "sys-topic", 2],
      // deny subscribe:# of the same role overrides allow subscribe:#.
      ["medium", "never-matches", 0],
      ["medium", "shared-topic", 3],
      ["medium", "wildcard-only", 4],
      ["low", "shared-topic", 2],
    ]);
    expect(findings.find((f) => f.index === 3)?.message).toContain("40 devices");
  });

  it("a role held by one device is not shared", () => {
    const findings = lintPolicy([risky], { holders: new Map([["risky", 1]]) });
    expect(findings.some((f) => f.code === "shared-topic")).toBe(false);
  });

  it("without holder counts, shared topics are reported as low", () => {
    const findings = lintPolicy([{ name: "r", rules: [{ effect: "allow", action: "publish", resource: "fleet/alerts" }] }]);
    expect(findings).toMatchObject([{ severity: "low", code: "shared-topic" }]);
  });

  it("flags a custom role granting every operator permission", () => {
    const findings = lintPolicy([{ name: "superuser", rules: [{ effect: "allow", action: "*", resource: "*" }] }]);
    expect(findings).toMatchObject([{ code: "operator-wildcard", role: "superuser" }]);
  });

  it("flags an allow rule its own role's deny always overrides, and only that one", () => {
    const role: RoleDefinition = {
      name: "shadowed",
      rules: [
        { effect: "allow", action: "publish", resource: "devices/${device.id}/telemetry/#" },
        { effect: "allow", action: "publish", resource: "devices/${device.id}/status" },
        { effect: "deny", action: "publish", resource: "devices/+/telemetry/#" },
      ],
    };
    const findings = lintPolicy([role], { holders: new Map([["shadowed", 1]]) });
    expect(findings.filter((f) => f.code === "never-matches").map((f) => f.index)).toEqual([0]);
    expect(findings.some((f) => f.code === "deny-shadows-nothing")).toBe(false);
  });

  it("flags a deny rule that overlaps no allow rule of any role", () => {
    const roles: RoleDefinition[] = [
      { name: "a", rules: [{ effect: "allow", action: "publish", resource: "devices/${device.id}/telemetry/#" }] },
      {
        name: "b",
        rules: [
          { effect: "deny", action: "publish", resource: "devices/+/telemetry/secret" },
          { effect: "deny", action: "publish", resource: "factory/reset" },
          { effect: "deny", action: "subscribe", resource: "devices/#" },
        ],
      },
    ];
    const findings = lintPolicy(roles, { holders: new Map([["a", 1]]) });
    expect(findings.filter((f) => f.code === "deny-shadows-nothing").map((f) => [f.role, f.index])).toEqual([
      ["b", 1],
      ["b", 2],
    ]);
  });
});
