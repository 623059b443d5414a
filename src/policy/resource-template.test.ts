import { describe, expect, it } from "vitest";
import { isMoatError } from "../errors.js";
import type { DeviceSubject } from "./model.js";
import { isSafeVariableValue, parseFilterTemplate, substituteFilter } from "./resource-template.js";

const subject: DeviceSubject = { id: "d1", group: "line-3", certCn: "d1.example", attributes: { site: "berlin" } };

describe("topic filter variables", () => {
  it.each([
    ["devices/${device.id}/telemetry/#", "devices/d1/telemetry/#"],
    ["groups/${device.group}/+", "groups/line-3/+"],
    ["sites/${device.attr.site}/${device.id}", "sites/berlin/d1"],
    ["certs/${cert.cn}", "certs/d1.example"],
    ["a/dev-${device.id}-x/b", "a/dev-d1-x/b"],
    ["plain/topic", "plain/topic"],
  ])("%s → %s", (source, expected) => {
    expect(substituteFilter(parseFilterTemplate(source), subject)).toBe(expected);
  });

  it.each([
    ["${device.name}", "unknown variable"],
    ["${device.attr.}", "empty attribute name"],
    ["${device.attr.a b}", "attribute name with a space"],
    ["a/${device.id", "unclosed variable"],
    ["a/${device.id}#", "'#' inside a level"],
    ["a/#/${device.id}", "'#' not last"],
    ["a/+${device.id}", "'+' inside a level"],
    ["", "empty filter"],
  ])("rejects %j (%s) with POLICY_RULE_INVALID", (source) => {
    expect(() => parseFilterTemplate(source)).toThrowError(expect.objectContaining({ code: "POLICY_RULE_INVALID" }));
    try {
      parseFilterTemplate(source);
    } catch (error) {
      expect(isMoatError(error, "POLICY_RULE_INVALID")).toBe(true);
    }
  });
});

describe("hostile substituted values make the rule not apply", () => {
  const template = parseFilterTemplate("devices/${device.attr.room}/cmd");
  it.each([
    ["a/b", "would add a level"],
    ["+", "would become a wildcard"],
    ["#", "would become a wildcard"],
    ["x#", "contains '#'"],
    ["x+y", "contains '+'"],
    ["nul\u0000", "contains NUL"],
    ["", "empty"],
    ["$SYS", "starts with '$'"],
  ])("attribute value %j (%s)", (value) => {
    expect(isSafeVariableValue(value)).toBe(false);
    expect(substituteFilter(template, { id: "d1", attributes: { room: value } })).toBeNull();
  });

  it("a missing attribute, group or certificate also means no match", () => {
    expect(substituteFilter(template, { id: "d1" })).toBeNull();
    expect(substituteFilter(parseFilterTemplate("g/${device.group}"), { id: "d1", group: null })).toBeNull();
    expect(substituteFilter(parseFilterTemplate("c/${cert.cn}"), { id: "d1" })).toBeNull();
  });

  it("an attribute named like an Object prototype member is not inherited", () => {
    expect(substituteFilter(parseFilterTemplate("x/${device.attr.constructor}"), { id: "d1", attributes: {} })).toBeNull();
  });

  it("ordinary values pass", () => {
    expect(isSafeVariableValue("sensor-01.a_b")).toBe(true);
    expect(isSafeVariableValue("x$")).toBe(true);
  });
});
