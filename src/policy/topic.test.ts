import { describe, expect, it } from "vitest";
import { filterCovers, filtersIntersect, isValidTopicFilter, isValidTopicName, topicMatches } from "./topic.js";

// The examples of OASIS MQTT 3.1.1 §4.7 (topic names and filters), as [filter, topic, matches].
const SPEC_MATCHES: Array<[string, string, boolean]> = [
  // §4.7.1.2 multi-level wildcard
  ["sport/tennis/player1/#", "sport/tennis/player1", true],
  ["sport/tennis/player1/#", "sport/tennis/player1/ranking", true],
  ["sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true],
  ["sport/#", "sport", true],
  ["#", "sport/tennis/player1", true],
  ["#", "/", true],
  // §4.7.1.3 single-level wildcard
  ["sport/tennis/+", "sport/tennis/player1", true],
  ["sport/tennis/+", "sport/tennis/player2", true],
  ["sport/tennis/+", "sport/tennis/player1/ranking", false],
  ["sport/+", "sport", false],
  ["sport/+", "sport/", true],
  ["+/+", "/finance", true],
  ["/+", "/finance", true],
  ["+", "/finance", false],
  ["sport/+/player1", "sport/tennis/player1", true],
  ["+/tennis/#", "sport/tennis/player1", true],
  // §4.7.2 topics beginning with $ [MQTT-4.7.2-1]
  ["#", "$SYS/monitor/Clients", false],
  ["+/monitor/Clients", "$SYS/monitor/Clients", false],
  ["$SYS/#", "$SYS/monitor/Clients", true],
  ["$SYS/monitor/+", "$SYS/monitor/Clients", true],
  ["+", "$SYS", false],
  // §4.7.3 case sensitivity, spaces and leading separators
  ["ACCOUNTS", "Accounts", false],
  ["Accounts payable", "Accounts payable", true],
  ["/finance", "finance", false],
  ["finance", "/finance", false],
  // a `$` later in the topic is an ordinary character
  ["+/$x", "a/$x", true],
  ["a/+", "a/$x", true],
];

describe("MQTT 3.1.1 §4.7 wildcard matching (reference matcher)", () => {
  it.each(SPEC_MATCHES)("filter %j vs topic %j → %s", (filter, topic, expected) => {
    expect(topicMatches(filter, topic)).toBe(expected);
  });
});

describe("topic filter and name validity", () => {
  it.each([
    ["#", true],
    ["sport/tennis/#", true],
    ["sport/tennis#", false],
    ["sport/tennis/#/ranking", false],
    ["+", true],
    ["+/tennis/#", true],
    ["sport+", false],
    ["sport/+/player1", true],
    ["/", true],
    ["", false],
    ["a\u0000b", false],
    ["a/##", false],
  ])("filter %j valid: %s", (filter, valid) => {
    expect(isValidTopicFilter(filter)).toBe(valid);
  });

  it.each([
    ["sport/tennis", true],
    ["/", true],
    ["$SYS/broker/load", true],
    ["", false],
    ["a/+", false],
    ["a/#", false],
    ["a\u0000", false],
    ["x".repeat(65_536), false],
  ])("name %j valid: %s", (topic, valid) => {
    expect(isValidTopicName(topic)).toBe(valid);
  });
});

// [allowed filter, requested filter, allowed covers everything requested can match]
const COVERS: Array<[string, string, boolean]> = [
  ["devices/d1/commands/#", "devices/d1/commands/+", true],
  ["devices/d1/commands/#", "devices/d1/commands/#", true],
  ["devices/d1/commands/#", "devices/d1/commands", true],
  ["devices/d1/commands/#", "devices/d1/commands/reboot", true],
  ["devices/d1/commands/#", "#", false],
  ["devices/d1/commands/#", "devices/+/commands/#", false],
  ["devices/d1/commands/#", "devices/d1/#", false],
  ["devices/+/status", "devices/d7/status", true],
  ["devices/+/status", "devices/+/status", true],
  ["devices/+/status", "devices/#", false],
  ["a/+", "a", false],
  ["a/+/#", "a/+", true],
  ["#", "#", true],
  ["#", "$SYS/x", false],
  ["+/#", "$SYS/#", false],
  ["$SYS/#", "$SYS/+", true],
  ["+", "#", false],
];

describe("subscription coverage", () => {
  it.each(COVERS)("allowed %j covers request %j → %s", (allowed, requested, expected) => {
    expect(filterCovers(allowed, requested)).toBe(expected);
  });
});

const INTERSECTS: Array<[string, string, boolean]> = [
  ["devices/+/secret/#", "devices/#", true],
  ["devices/d1/secret", "devices/+/secret", true],
  ["devices/d1/secret", "devices/d2/+", false],
  ["a/#", "a", true],
  ["a/+", "a", false],
  ["#", "$SYS/x", false],
  ["$SYS/#", "#", false],
  ["$SYS/#", "$SYS/+", true],
  ["+/b", "a/+", true],
  ["a/b/c", "a/b", false],
];

describe("filter intersection (deny rules on SUBSCRIBE)", () => {
  it.each(INTERSECTS)("%j ∩ %j non-empty → %s", (x, y, expected) => {
    expect(filtersIntersect(x, y)).toBe(expected);
    expect(filtersIntersect(y, x)).toBe(expected);
  });
});
