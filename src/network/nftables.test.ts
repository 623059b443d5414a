import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { EXAMPLE_POLICY_PATH } from "../../test/network-fixtures.js";
import { compileNftables } from "./nftables.js";
import { loadPolicy } from "./policy-load.js";

const text = readFileSync(EXAMPLE_POLICY_PATH, "utf8");

describe("compiling to nftables", () => {
  const script = compileNftables(loadPolicy(text));

  it("gives the same bytes every time", () => {
    expect(compileNftables(loadPolicy(text))).toBe(script);
    expect(compileNftables(loadPolicy(text.replace(/\n/g, "\r\n")))).toBe(script);
  });

  it("replaces one inet table atomically and drops by default in the forward chain", () => {
    expect(script).toContain("table inet moat_segmentation\ndelete table inet moat_segmentation\ntable inet moat_segmentation {");
    expect(script).toMatch(/chain forward \{\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tct state established,related counter accept/);
  });

  it("declares a named interval set per VLAN and network", () => {
    for (const [set, element] of [["vlan_10", "192.168.10.0/24"], ["vlan_20", "192.168.20.0/24"], ["vlan_30", "192.168.30.0/24"], ["net_admin_network", "10.0.0.0/24"], ["net_broker", "192.168.40.10"]])
      expect(script).toMatch(new RegExp(`set ${set} \\{\\n\\t\\ttype ipv4_addr\\n\\t\\tflags interval\\n[^}]*elements = \\{ ${element.replace(/\./g, "\\.")} \\}`));
  });

  it("counts every rule and logs every drop with a prefix naming the VLAN", () => {
    const ruleLines = script.split("\n").filter((l) => /^\t\t(ip|tcp|udp|meta|counter|ct)\b/.test(l));
    expect(ruleLines.length).toBeGreaterThan(10);
    for (const line of ruleLines) expect(line).toContain("counter");
    const drops = ruleLines.filter((l) => / drop\b/.test(l) && !l.includes("ct state invalid"));
    for (const line of drops) expect(line).toMatch(/log prefix "moat drop (vlan \d+ [a-z-]+ (egress|ingress)|no vlan): "/);
    expect(script).toContain(`ip saddr @net_admin_network tcp dport 22 counter accept comment "iot-gateways rule 3 line 26: allow: ssh (22) from admin_network"`);
    expect(script).toContain(`tcp dport { 1883, 8883 } counter return comment "iot-sensors rule 1 line 16: allow: mqtt (1883, 8883)"`);
  });

  it("writes UDP, protocol-less port lists and literal peers", () => {
    const policy = loadPolicy(
      "networks:\n  admin_network: 10.0.0.0/24\nvlans:\n  - id: 9\n    name: cams\n    subnet: 192.168.9.0/24\n    firewall_rules:\n" +
        "      - {action: allow, service: ntp, to: [10.1.0.0/16, 10.1.2.0/24, 10.2.0.1]}\n" +
        "      - {action: allow, ports: [53], proto: any, to: 10.0.0.53}\n" +
        "      - {action: allow, service: rtsp, ports: [554, '8554-8560'], from: admin_network, to: 192.168.9.20}\n" +
        "      - deny: all\n",
    );
    const out = compileNftables(policy);
    expect(out).toContain("ip daddr { 10.1.0.0/16, 10.2.0.1 } udp dport 123 counter return");
    expect(out).toContain("ip daddr 10.0.0.53 meta l4proto { tcp, udp } th dport 53 counter return");
    expect(out).toContain("ip saddr @net_admin_network ip daddr 192.168.9.20 tcp dport { 554, 8554-8560 } counter accept");
  });
});
