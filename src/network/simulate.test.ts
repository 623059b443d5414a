import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { EXAMPLE_POLICY_PATH } from "../../test/network-fixtures.js";
import { isMoatError } from "../errors.js";
import { loadPolicy } from "./policy-load.js";
import { explainDecision, FlowSimulator, parseFlow } from "./simulate.js";

const simulator = new FlowSimulator(loadPolicy(readFileSync(EXAMPLE_POLICY_PATH, "utf8")));
const decide = (from: string, to: string, port: number, proto: "tcp" | "udp" = "tcp") => simulator.decide(parseFlow({ from, to, port, proto }));

describe("simulating flows through the example policy", () => {
  it("sensors reach the broker on MQTT over TLS through their first rule", () => {
    const d = decide("192.168.10.5", "192.168.40.10", 8883);
    expect(d.decision).toBe("allow");
    expect(d.decidingRule).toMatchObject({ vlan: "iot-sensors", index: 1, line: 16, text: "allow: mqtt (1883, 8883)" });
    expect(d.steps).toHaveLength(1);
    expect(explainDecision(d, parseFlow({ from: "192.168.10.5", to: "192.168.40.10", port: 8883 }))).toBe(
      'allowed by VLAN iot-sensors egress rule 1 "allow: mqtt (1883, 8883)" (line 16)',
    );
  });

  it("sensors cannot SSH to a gateway: their own 'deny: all' decides", () => {
    const d = decide("192.168.10.5", "192.168.20.10", 22);
    expect(d.decision).toBe("deny");
    expect(d.decidingRule).toMatchObject({ vlan: "iot-sensors", index: 3, line: 18 });
  });

  it("sensors may open MQTT, but the gateways' ingress rules (SSH from admin only) still deny it", () => {
    const d = decide("192.168.10.5", "192.168.20.10", 8883);
    expect(d.decision).toBe("deny");
    expect(d.steps.map((s) => [s.vlan, s.direction, s.verdict])).toEqual([["iot-sensors", "egress", "allow"], ["iot-gateways", "ingress", "deny"]]);
    expect(d.decidingRule).toBeNull();
    expect(explainDecision(d, parseFlow({ from: "192.168.10.5", to: "192.168.20.10", port: 8883 }))).toBe(
      "denied by VLAN iot-gateways ingress: no rule matched (default deny)",
    );
  });

  it("admin reaches any port in management and SSH on gateways; nothing else on gateways", () => {
    expect(decide("10.0.0.7", "192.168.30.9", 31337).decision).toBe("allow");
    expect(decide("10.0.0.7", "192.168.30.9", 161, "udp").decision).toBe("allow");
    expect(decide("10.0.0.7", "192.168.20.9", 22)).toMatchObject({ decision: "allow", decidingRule: { vlan: "iot-gateways", index: 3, line: 26 } });
    expect(decide("10.0.0.7", "192.168.20.9", 80).decision).toBe("deny");
    expect(decide("10.0.1.7", "192.168.30.9", 22).decision).toBe("deny");
  });

  it("UDP does not match TCP rules; management hosts open nothing", () => {
    expect(decide("192.168.10.5", "192.168.40.10", 8883, "udp").decision).toBe("deny");
    expect(decide("192.168.30.9", "10.0.0.7", 443).decision).toBe("deny");
  });

  it("a flow touching no VLAN is denied", () => {
    const d = decide("10.0.0.7", "192.168.40.10", 8883);
    expect(d).toMatchObject({ decision: "deny", srcVlan: null, dstVlan: null, decidingRule: null });
    expect(explainDecision(d, parseFlow({ from: "10.0.0.7", to: "192.168.40.10", port: 8883 }))).toBe("neither 10.0.0.7 nor 192.168.40.10 is in a VLAN: default deny");
  });

  it("rejects malformed flows with NETWORK_FLOW_INVALID", () => {
    for (const input of [
      { from: "192.168.10.300", to: "1.1.1.1", port: "1" },
      { from: "1.1.1.1", to: "example.com", port: "1" },
      { from: "1.1.1.1", to: "1.1.1.1", port: "0" },
      { from: "1.1.1.1", to: "1.1.1.1", port: "65536" },
      { from: "1.1.1.1", to: "1.1.1.1", port: "22x" },
      { from: "1.1.1.1", to: "1.1.1.1", port: "22", proto: "icmp" },
    ])
      expect(() => parseFlow(input), JSON.stringify(input)).toThrow(expect.objectContaining({ code: "NETWORK_FLOW_INVALID" }));
    expect(isMoatError(new Error("x"))).toBe(false);
  });
});
