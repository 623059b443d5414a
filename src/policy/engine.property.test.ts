import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compilePolicy } from "./engine.js";
import type { Assignment, DeviceAction, DeviceSubject, RoleDefinition, Rule } from "./model.js";
import { referenceDecide } from "./reference.js";
import { filterCovers, topicMatches } from "./topic.js";

// A small alphabet makes collisions between filters and topics frequent, which is where bugs hide.
const literal = fc.constantFrom("a", "b", "$SYS", "$x", "", "dev", "d1");
const topicLevels = fc.array(literal, { minLength: 1, maxLength: 5 });
const topicName = topicLevels.map((levels) => levels.join("/")).filter((t) => t.length > 0);
const filterLevel = fc.oneof(
  { weight: 3, arbitrary: literal },
  { weight: 2, arbitrary: fc.constant("+") },
  { weight: 2, arbitrary: fc.constantFrom("${device.id}", "${device.group}", "${device.attr.room}", "${cert.cn}", "x-${device.id}") },
);
const ruleFilter = fc
  .tuple(fc.array(filterLevel, { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([levels, hash]) => [...levels, ...(hash ? ["#"] : [])].join("/"))
  .filter((f) => f.length > 0);
const requestFilter = fc
  .tuple(fc.array(fc.oneof(literal, fc.constant("+")), { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([levels, hash]) => [...levels, ...(hash ? ["#"] : [])].join("/"))
  .filter((f) => f.length > 0);
const plainFilter = fc
  .tuple(fc.array(fc.oneof(literal, fc.constant("+")), { minLength: 0, maxLength: 4 }), fc.boolean())
  .map(([levels, hash]) => [...levels, ...(hash ? ["#"] : [])].join("/"))
  .filter((f) => f.length > 0);
const action = fc.constantFrom<DeviceAction>("publish", "subscribe", "receive");
const rule: fc.Arbitrary<Rule> = fc.record({ effect: fc.constantFrom("allow" as const, "deny" as const), action, resource: ruleFilter });
const roles: fc.Arbitrary<RoleDefinition[]> = fc
  .array(fc.array(rule, { minLength: 0, maxLength: 6 }), { minLength: 1, maxLength: 4 })
  .map((ruleSets) => ruleSets.map((rules, i) => ({ name: `r${i}`, rules })));
const value = fc.constantFrom("d1", "a", "b", "+", "#", "a/b", "", "$SYS", "dev");
const subject: fc.Arbitrary<DeviceSubject> = fc.record({
  id: fc.constantFrom("d1", "a", "dev"),
  group: fc.option(value, { nil: null }),
  certCn: fc.option(value, { nil: null }),
  attributes: fc.record({ room: value }),
  status: fc.constantFrom("active", "quarantined"),
  roles: fc.subarray(["r0", "r1", "r3", "ghost"]),
});

describe("compiled engine agrees with the plain reference matcher", () => {
  it("on random roles, subjects, actions and topics", () => {
    fc.assert(
      fc.property(roles, subject, action, topicName, requestFilter, fc.nat(), (roleSet, who, act, topic, filter, pick) => {
        const assignments: Assignment[] = roleSet
          .filter((_, i) => (pick >> i) & 1)
          .map((r, i) => ({ role: r.name, kind: i % 2 === 0 ? "device" : "group", target: i % 2 === 0 ? who.id : (who.group ?? "g") }));
        const snapshot = { roles: [...roleSet, { name: "quarantine", rules: roleSet[0]!.rules }], assignments };
        const engine = compilePolicy(snapshot);
        const request = act === "subscribe" ? filter : topic;
        expect(engine.decide(who, act, request)).toEqual(referenceDecide(snapshot, who, act, request));
      }),
      { numRuns: 2000 },
    );
  });
});

describe("coverage is sound", () => {
  it("every topic matched by a covered request is matched by the covering filter", () => {
    fc.assert(
      fc.property(plainFilter, plainFilter, topicName, (allowed, requested, topic) => {
        if (filterCovers(allowed, requested) && topicMatches(requested, topic)) expect(topicMatches(allowed, topic)).toBe(true);
      }),
      { numRuns: 5000 },
    );
  });
});
