import { describe, expect, it } from "vitest";
import { assertRoleName, formatRule, parseRuleSpec, validateRole, validateRule } from "./rule.js";

describe("rule specs (CLI form)", () => {
  it("parses a device rule: action, then the filter after the first colon", () => {
    expect(parseRuleSpec("publish:devices/${device.id}/telemetry/#", "allow")).toEqual({
      effect: "allow",
      action: "publish",
      resource: "devices/${device.id}/telemetry/#",
    });
    expect(parseRuleSpec("subscribe:a:b/+", "deny")).toEqual({ effect: "deny", action: "subscribe", resource: "a:b/+" });
  });

  it("parses operator permissions with wildcards", () => {
    expect(parseRuleSpec("devices:read", "allow")).toEqual({ effect: "allow", action: "devices:read", resource: "*" });
    expect(parseRuleSpec("*:read", "allow").action).toBe("*:read");
    expect(parseRuleSpec("*", "allow").action).toBe("*");
  });

  it("round-trips through formatRule", () => {
    expect(formatRule(parseRuleSpec("receive:x/#", "deny"))).toBe("deny receive:x/#");
    expect(formatRule(parseRuleSpec("certs:revoke", "allow"))).toBe("allow certs:revoke");
  });

  it.each(["publish", "publish:", "publish:a/#/b", "devices", "Devices:read", "devices:read:x", "devices:", ":read", "rm -rf"])(
    "rejects %j with POLICY_RULE_INVALID",
    (spec) => {
      expect(() => parseRuleSpec(spec, "allow")).toThrowError(expect.objectContaining({ code: "POLICY_RULE_INVALID" }));
    },
  );

  it("rejects malformed rule objects from the API", () => {
    const bad = [
      { effect: "permit", action: "publish", resource: "a" },
      { effect: "allow", action: 7, resource: "a" },
      { effect: "allow", action: "publish" },
      { effect: "allow", action: "devices:read", resource: "devices/d1" },
    ];
    for (const rule of bad) expect(() => validateRule(rule as never)).toThrowError(expect.objectContaining({ code: "POLICY_RULE_INVALID" }));
  });
});

describe("role definitions", () => {
  it.each(["", "-x", "1x", "Admin", "a.b", "a b", "a/b", "x".repeat(65), "role\u0000"])("rejects role name %j", (name) => {
    expect(() => assertRoleName(name)).toThrowError(expect.objectContaining({ code: "ROLE_NAME_INVALID" }));
  });

  it("normalises operator rules to resource '*'", () => {
    const role = validateRole({ name: "ops", rules: [{ effect: "allow", action: "devices:read", resource: undefined as never }] });
    expect(role.rules[0]!.resource).toBe("*");
  });

  it("refuses more than 1000 rules", () => {
    const rules = Array.from({ length: 1001 }, () => ({ effect: "allow" as const, action: "publish", resource: "a" }));
    expect(() => validateRole({ name: "big", rules })).toThrowError(expect.objectContaining({ code: "POLICY_RULE_INVALID" }));
  });
});
