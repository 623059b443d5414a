import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MUD_EXAMPLE_PATH } from "../../test/network-fixtures.js";
import { importMud } from "./mud.js";
import { mudRulesToYaml, writeMudIntoPolicy } from "./mud-write.js";
import { analyzePolicy, loadPolicy } from "./policy-load.js";
import { FlowSimulator, parseFlow } from "./simulate.js";

const mudText = readFileSync(MUD_EXAMPLE_PATH, "utf8");
const siteText = readFileSync(new URL("../../examples/segmentation/mud-site.yml", import.meta.url), "utf8");

/** A minimal valid MUD file with one from-device ACE whose parts the cases replace. */
function mud(ace: unknown, aclType = "ipv4-acl-type"): string {
  return JSON.stringify({
    "ietf-mud:mud": {
      "mud-version": 1, "mud-url": "https://example.com/x.json", "last-update": "2026-01-01T00:00:00Z", "is-supported": true,
      "from-device-policy": { "access-lists": { "access-list": [{ name: "a" }] } },
    },
    "ietf-access-control-list:acls": { acl: [{ name: "a", type: aclType, aces: { ace: [ace] } }] },
  });
}

describe("importing RFC 8520 MUD files", () => {
  it("turns the example's access lists into egress and ingress rules", () => {
    const imported = importMud(mudText, "thermostats");
    expect(imported.mudUrl).toBe("https://things.example.com/mud/thermostat-v2.json");
    expect(imported.rules).toEqual([
      { action: "allow", proto: "tcp", ports: [{ from: 8883, to: 8883 }], from: null, to: "broker.example.com", comment: "mud thermostat-v4-from/mqtts-to-broker" },
      { action: "allow", proto: "udp", ports: [{ from: 123, to: 123 }], from: null, to: "192.168.40.0/24", comment: "mud thermostat-v4-from/ntp" },
      { action: "allow", proto: "udp", ports: [{ from: 5684, to: 5684 }], from: "mud-local-networks", to: null, comment: "mud thermostat-v4-to/local-coap" },
      { action: "deny", proto: "any", ports: null, from: null, to: null, comment: "MUD: anything not allowed is denied" },
    ]);
    // same-manufacturer cannot be expressed: skipped (stricter), with the JSON path.
    expect(imported.warnings).toEqual([expect.objectContaining({ path: '$["ietf-access-control-list:acls"].acl[0].aces.ace[2]' })]);
    // The broker's replies to the device's own connections are left to connection tracking.
    expect(imported.notes).toEqual([expect.objectContaining({ path: '$["ietf-access-control-list:acls"].acl[1].aces.ace[0]' })]);
  });

  it("writes the rules into the group's VLAN, keeping comments, and the result enforces them", () => {
    const written = writeMudIntoPolicy(siteText, importMud(mudText, "thermostats"));
    expect(written).toContain("# DNS names used by MUD files are networks with the same name");
    expect(written).toContain("- { action: allow, proto: tcp, ports: [ 8883 ], to: broker.example.com, comment: mud thermostat-v4-from/mqtts-to-broker }");
    const analysis = analyzePolicy(written);
    expect(analysis.valid).toBe(true);
    const sim = new FlowSimulator(loadPolicy(written));
    expect(sim.decide(parseFlow({ from: "192.168.50.7", to: "192.168.40.10", port: "8883" })).decision).toBe("allow");
    expect(sim.decide(parseFlow({ from: "192.168.50.7", to: "192.168.40.10", port: "1883" })).decision).toBe("deny");
    expect(sim.decide(parseFlow({ from: "192.168.10.7", to: "192.168.50.7", port: "5684", proto: "udp" })).decision).toBe("deny"); // sensors' egress denies
    expect(sim.decide(parseFlow({ from: "192.168.77.7", to: "192.168.50.7", port: "5684", proto: "udp" })).decision).toBe("allow");
  });

  it("prints a standalone firewall_rules block that reads back as the same rules", () => {
    const yaml = mudRulesToYaml(importMud(mudText, "thermostats"));
    const indented = yaml.split("\n").filter((l) => l.startsWith("  ")).map((l) => `  ${l}`).join("\n");
    const policy = `networks:\n  broker.example.com: 192.168.40.10/32\n  mud-local-networks: 192.168.0.0/16\nvlans:\n  - id: 50\n    name: thermostats\n    subnet: 192.168.50.0/24\n    firewall_rules:\n${indented}\n`;
    const analysis = analyzePolicy(policy);
    expect(analysis.diagnostics.filter((d) => d.severity === "error")).toEqual([]);
    expect(analysis.policy.vlans[0]!.rules.map((r) => [r.action, r.direction, r.proto])).toEqual([
      ["allow", "egress", "tcp"], ["allow", "egress", "udp"], ["allow", "ingress", "udp"], ["deny", "egress", "any"],
    ]);
  });

  it("refuses to write when the group has no VLAN, or the result would not validate", () => {
    const imported = importMud(mudText, "fridges");
    expect(() => writeMudIntoPolicy(siteText, imported)).toThrow(expect.objectContaining({ code: "NETWORK_VLAN_NOT_FOUND" }));
    const withoutNames = siteText.replace(/^ {2}broker\.example\.com:.*$/m, "");
    expect(() => writeMudIntoPolicy(withoutNames, importMud(mudText, "thermostats"))).toThrow(
      expect.objectContaining({ code: "NETWORK_POLICY_INVALID", message: expect.stringContaining('"broker.example.com"') }),
    );
  });

  const ACE = (matches: unknown, forwarding: unknown = "accept") => ({ name: "e", matches, actions: { forwarding } });
  it.each([
    ["{", "$"],
    ["[]", "$"],
    [JSON.stringify({}), '$["ietf-mud:mud"]'],
    [mud(ACE({})).replace('"mud-version":1', '"mud-version":2'), '$["ietf-mud:mud"]["mud-version"]'],
    [mud(ACE({})).replace('"https://example.com/x.json"', '"http://example.com/x.json"'), '$["ietf-mud:mud"]["mud-url"]'],
    [mud(ACE({})).replace('"is-supported":true', '"is-supported":"yes"'), '$["ietf-mud:mud"]["is-supported"]'],
    [mud(ACE({})).replace('"access-list":[{"name":"a"}]', '"access-list":[{"name":"b"}]'), '$["ietf-mud:mud"]["from-device-policy"]["access-lists"]["access-list"][0].name'],
    [mud(ACE({}, "forward")), '$["ietf-access-control-list:acls"].acl[0].aces.ace[0].actions.forwarding'],
    [mud(ACE({ tcp: { "destination-port": { operator: "eq", port: 70000 } } })), '$["ietf-access-control-list:acls"].acl[0].aces.ace[0].matches.tcp["destination-port"].port'],
    [mud(ACE({ tcp: { "destination-port": { operator: "gt", port: 70 } } })), '$["ietf-access-control-list:acls"].acl[0].aces.ace[0].matches.tcp["destination-port"].operator'],
    [mud(ACE({ udp: { "destination-port": { "lower-port": 90, "upper-port": 80 } } })), '$["ietf-access-control-list:acls"].acl[0].aces.ace[0].matches.udp["destination-port"]["upper-port"]'],
    [mud(ACE({ ipv4: { protocol: 17 }, tcp: {} })), '$["ietf-access-control-list:acls"].acl[0].aces.ace[0].matches.ipv4.protocol'],
    [mud(ACE({ ipv4: { "ietf-acldns:dst-dnsname": "bad name!" } })), '$["ietf-access-control-list:acls"].acl[0].aces.ace[0].matches.ipv4["ietf-acldns:dst-dnsname"]'],
    [mud(ACE({ ipv4: { "destination-ipv4-network": "10.0.0.1/8" } })), '$["ietf-access-control-list:acls"].acl[0].aces.ace[0].matches.ipv4["destination-ipv4-network"]'],
    [mud(ACE({ "ietf-mud:mud": { "best-friends": [null] } })), '$["ietf-access-control-list:acls"].acl[0].aces.ace[0].matches["ietf-mud:mud"]["best-friends"]'],
    [mud(ACE({ udp: { "ietf-mud:direction-initiated": "from-device" } })), '$["ietf-access-control-list:acls"].acl[0].aces.ace[0].matches.udp["ietf-mud:direction-initiated"]'],
    [mud("not an ace"), '$["ietf-access-control-list:acls"].acl[0].aces.ace[0]'],
  ])("rejects malformed input naming the JSON path (%#)", (text, path) => {
    try {
      importMud(text, "g");
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ code: "NETWORK_MUD_INVALID" });
      expect((error as Error).message.startsWith(`${path}: `), (error as Error).message).toBe(true);
    }
  });

  it("skips what it cannot express, so the result is never looser than the MUD file", () => {
    const cases = [
      mud(ACE({ ipv4: { protocol: 1 } })),
      mud(ACE({ tcp: { "source-port": { operator: "eq", port: 443 } } })),
      mud(ACE({ "ietf-mud:mud": { controller: "urn:example:ctl" } })),
      mud(ACE({ ipv4: { dscp: 10 } })),
      mud(ACE({}), "ipv6-acl-type"),
    ];
    for (const text of cases) {
      const imported = importMud(text, "g");
      expect(imported.warnings, text).toHaveLength(1);
      expect(imported.rules.filter((r) => r.action === "allow"), text).toEqual([]);
    }
  });

  it("understands port operators and ranges", () => {
    const ports = (spec: unknown) => importMud(mud(ACE({ tcp: { "destination-port": spec } })), "g").rules[0]!.ports;
    expect(ports({ operator: "lte", port: 1023 })).toEqual([{ from: 1, to: 1023 }]);
    expect(ports({ operator: "gte", port: 49152 })).toEqual([{ from: 49152, to: 65535 }]);
    expect(ports({ operator: "neq", port: 23 })).toEqual([{ from: 1, to: 22 }, { from: 24, to: 65535 }]);
    expect(ports({ "lower-port": 8000, "upper-port": 8010 })).toEqual([{ from: 8000, to: 8010 }]);
  });
});

describe("hostile MUD input", () => {
  it("fails only with NETWORK_MUD_INVALID, whatever the JSON", () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string({ maxLength: 100 })), (text) => {
        try {
          importMud(text, "g");
        } catch (error) {
          expect((error as { code?: string }).code).toBe("NETWORK_MUD_INVALID");
        }
      }),
      { numRuns: 300 },
    );
  });

  it("a valid file with any one value replaced still fails only with NETWORK_MUD_INVALID", () => {
    const paths: (string | number)[][] = [];
    const walk = (value: unknown, path: (string | number)[]) => {
      paths.push(path);
      if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) walk(v, [...path, Array.isArray(value) ? Number(k) : k]);
    };
    walk(JSON.parse(mudText), []);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: paths.length - 1 }), fc.jsonValue(), (i, replacement) => {
        const doc = JSON.parse(mudText);
        const path = paths[i]!;
        let parent = doc;
        for (const key of path.slice(0, -1)) parent = parent[key];
        parent[path[path.length - 1]!] = replacement;
        try {
          const imported = importMud(JSON.stringify(doc), "g");
          for (const rule of imported.rules) expect(["allow", "deny"]).toContain(rule.action);
        } catch (error) {
          expect((error as { code?: string }).code).toBe("NETWORK_MUD_INVALID");
        }
      }),
      { numRuns: 400 },
    );
  });
});
