import { describe, expect, it } from "vitest";
import { IOT_PORTS, parsePortSpec } from "./port-spec.js";

describe("port specification", () => {
  it("reads ports, ranges, the iot list and /udp items", () => {
    expect(parsePortSpec("22,80-82,5683/udp")).toEqual({ tcp: [22, 80, 81, 82], udp: [5683] });
    expect(parsePortSpec("1-1000").tcp).toHaveLength(1000);
    const iot = parsePortSpec("iot");
    expect(iot.tcp).toEqual(IOT_PORTS.tcp);
    expect(iot.udp).toEqual(expect.arrayContaining([5683, 47808]));
    expect(iot.tcp).toEqual(expect.arrayContaining([21, 22, 23, 80, 443, 502, 554, 1883, 2323, 8080, 8443, 8883]));
    expect(parsePortSpec("iot/udp").tcp).toEqual([]);
    expect(parsePortSpec("443,443,1-2")).toEqual({ tcp: [1, 2, 443], udp: [] });
  });

  it("refuses malformed items with SCAN_PORTS_INVALID", () => {
    for (const bad of ["", "0", "65536", "10-5", "80,", "http", "1-2-3", "80/sctp", "-5"])
      expect(() => parsePortSpec(bad), bad).toThrow(expect.objectContaining({ code: "SCAN_PORTS_INVALID" }));
  });
});
