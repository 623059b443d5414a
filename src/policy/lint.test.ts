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
});
