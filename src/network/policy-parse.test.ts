import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatCidr } from "./address.js";
import { SEED_POLICY } from "../../test/network-fixtures.js";
import { parsePolicyText } from "./policy-parse.js";


describe("parsing the seed's policy file", () => {
  it("ships the seed file unchanged as an example", () => {
    const example = readFileSync(new URL("../../examples/segmentation/seed-network-segmentation.yml", import.meta.url), "utf8");
    expect(example).toBe(SEED_POLICY);
  });

  it("reads every VLAN and rule with its line", () => {
    const { policy, diagnostics } = parsePolicyText(SEED_POLICY);
    expect(diagnostics).toEqual([]);
    expect(policy.vlans.map((v) => [v.id, v.name, formatCidr(v.subnet), v.line])).toEqual([
      [10, "iot-sensors", "192.168.10.0/24", 5],
      [20, "iot-gateways", "192.168.20.0/24", 13],
      [30, "iot-management", "192.168.30.0/24", 22],
    ]);
    const rules = policy.vlans.flatMap((v) =>
      v.rules.map((r) => ({
        vlan: v.id, index: r.index, line: r.line, action: r.action, direction: r.direction, proto: r.proto,
        ports: r.ports?.map((p) => p.from) ?? null, from: r.from?.map((f) => f.text) ?? null,
      })),
    );
    expect(rules).toEqual([
      { vlan: 10, index: 1, line: 9, action: "allow", direction: "egress", proto: "tcp", ports: [1883, 8883], from: null },
      { vlan: 10, index: 2, line: 10, action: "allow", direction: "egress", proto: "tcp", ports: [443], from: null },
      { vlan: 10, index: 3, line: 11, action: "deny", direction: "egress", proto: "any", ports: null, from: null },
      { vlan: 20, index: 1, line: 17, action: "allow", direction: "egress", proto: "tcp", ports: [1883, 8883], from: null },
      { vlan: 20, index: 2, line: 18, action: "allow", direction: "egress", proto: "tcp", ports: [443], from: null },
      { vlan: 20, index: 3, line: 19, action: "allow", direction: "ingress", proto: "tcp", ports: [22], from: ["admin_network"] },
      { vlan: 20, index: 4, line: 20, action: "deny", direction: "egress", proto: "any", ports: null, from: null },
      { vlan: 30, index: 1, line: 26, action: "allow", direction: "ingress", proto: "any", ports: null, from: ["admin_network"] },
      { vlan: 30, index: 2, line: 27, action: "deny", direction: "egress", proto: "any", ports: null, from: null },
    ]);
    expect(policy.vlans[2]!.management).toBe(true);
    expect(policy.vlans[0]!.management).toBe(false);
  });

  it("reads networks in their three spellings and the structured rule form", () => {
    const text = [
      "networks:",
      "  admin_network: 10.0.0.0/24",
      "  broker: [192.168.40.10, 192.168.41.0/24]",
      "  ops:",
      "    subnets: [172.16.0.0/16]",
      "    management: true",
      "vlans:",
      "  - id: 5",
      "    name: cams",
      "    subnet: 192.168.5.0/24",
      "    firewall_rules:",
      "      - {action: allow, service: ntp, to: broker}",
      "      - {action: allow, ports: [5683, '6000-6010'], proto: udp, to: [broker, 8.8.8.8]}",
      "      - {action: allow, service: rtsp, ports: [554], from: ops}",
      "      - {action: deny}",
    ].join("\n");
    const { policy, diagnostics } = parsePolicyText(text);
    expect(diagnostics).toEqual([]);
    expect([...policy.networks.values()].map((n) => [n.name, n.cidrs.map(formatCidr), n.management, n.line])).toEqual([
      ["admin_network", ["10.0.0.0/24"], true, 2],
      ["broker", ["192.168.40.10", "192.168.41.0/24"], false, 3],
      ["ops", ["172.16.0.0/16"], true, 4],
    ]);
    const [ntp, udp, rtsp, deny] = policy.vlans[0]!.rules;
    expect([ntp!.proto, ntp!.ports, ntp!.to?.map((t) => t.text), ntp!.direction]).toEqual(["udp", [{ from: 123, to: 123 }], ["broker"], "egress"]);
    expect([udp!.proto, udp!.ports, udp!.to?.map((t) => t.text), udp!.line]).toEqual(["udp", [{ from: 5683, to: 5683 }, { from: 6000, to: 6010 }], ["broker", "8.8.8.8"], 13]);
    expect([rtsp!.proto, rtsp!.direction, rtsp!.service]).toEqual(["tcp", "ingress", "rtsp"]);
    expect([deny!.action, deny!.proto, deny!.ports]).toEqual(["deny", "any", null]);
  });

  it.each([
    ["vlans: [\n  - id: 1\n", "yaml-syntax", 3],
    ["vlans:\n  - id: 1\n    id: 2\n", "yaml-syntax", 3],
    ["base: &b {id: 1, name: a, subnet: 10.0.0.0/24}\nvlans:\n  - *b\n", "yaml-alias", 3],
    ["vlan:\n  - id: 1\n", "unknown-key", 1],
    ["vlans:\n  - id: 1\n    name: a\n    subnet: 10.0.0.0/24\n    firewal_rules: []\n", "unknown-key", 5],
    ["vlans:\n  - id: ten\n    name: a\n    subnet: 10.0.0.0/24\n", "vlan-id-invalid", 2],
    ["vlans:\n  - id: 1\n    name: 'a b'\n    subnet: 10.0.0.0/24\n", "name-invalid", 3],
    ["vlans:\n  - id: 1\n    name: a\n    subnet: 10.0.0.1/24\n", "subnet-invalid", 4],
    ["vlans:\n  - id: 1\n    name: a\n    subnet: 10.0.0.0/33\n", "subnet-invalid", 4],
    ["vlans:\n  - id: 1\n    name: a\n    subnet: fd00::/64\n", "subnet-invalid", 4],
    ["vlans:\n  - id: 1\n    name: a\n", "subnet-missing", 2],
    ["vlans:\n  - id: 1\n    name: a\n    subnet: 10.0.0.0/24\n    firewall_rules:\n      - allow: mqtt (1883, 70000)\n", "rule-invalid", 6],
    ["vlans:\n  - id: 1\n    name: a\n    subnet: 10.0.0.0/24\n    firewall_rules:\n      - allow: gopher\n", "rule-invalid", 6],
    ["vlans:\n  - id: 1\n    name: a\n    subnet: 10.0.0.0/24\n    firewall_rules:\n      - permit: all\n", "rule-invalid", 6],
    ["vlans:\n  - id: 1\n    name: a\n    subnet: 10.0.0.0/24\n    firewall_rules:\n      - {action: allow, ports: [22], proto: sctp}\n", "rule-invalid", 6],
    ["vlans:\n  - id: 1\n    name: a\n    subnet: 10.0.0.0/24\n    firewall_rules:\n      - action: allow\n        ports: [0]\n", "port-invalid", 7],
    ["networks:\n  admin: 300.1.1.1\nvlans: []\n", "subnet-invalid", 2],
  ])("rejects %j with %s on line %i", (text, kind, line) => {
    const { diagnostics } = parsePolicyText(text);
    expect(diagnostics).toContainEqual(expect.objectContaining({ severity: "error", kind, line }));
  });

  it("refuses an oversized file without parsing it", () => {
    const { diagnostics } = parsePolicyText("#".repeat(8 * 1024 * 1024 + 1));
    expect(diagnostics.map((d) => d.kind)).toEqual(["file-too-large"]);
  });
});

describe("hostile input", () => {
  it("never throws, whatever the text (errors become diagnostics)", () => {
    const yamlish = fc.array(fc.constantFrom("vlans:", "  - id: 1", "    name: a", "    subnet: 10.0.0.0/24", "    firewall_rules:", "      - allow: ", "{", "[", "*x", "&x", ": :", "  ", "\t", "- deny: all", "networks:", "  a: 1.2.3.4"), { maxLength: 12 });
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), yamlish.map((lines) => lines.join("\n"))), (text) => {
        const { diagnostics } = parsePolicyText(text);
        for (const d of diagnostics) expect(typeof d.line).toBe("number");
      }),
      { numRuns: 300 },
    );
  });
});
