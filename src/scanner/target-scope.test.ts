import { describe, expect, it } from "vitest";
import { isMoatError } from "../errors.js";
import { cidrContains, formatIp, parseCidr, parseIp } from "../lib/ip-address.js";
import { DEFAULT_ALLOWED_TARGETS, parseAllowList, resolveTargets, runScope } from "./target-scope.js";

const loopback = parseAllowList(DEFAULT_ALLOWED_TARGETS);

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isMoatError(error)) return error.code;
    throw error;
  }
  throw new Error("expected a refusal");
}

describe("IP parsing", () => {
  it("reads strict literals and refuses shorthand, leading zeros and zone ids", () => {
    expect(parseIp("127.0.0.1")).toEqual({ family: 4, value: 0x7f000001n });
    for (const bad of ["127.1", "127.0.0.01", "256.0.0.1", "1.2.3", "fe80::1%eth0", "::g", "1:2:3:4:5:6:7:8:9"]) expect(parseIp(bad)).toBeNull();
    expect(formatIp(parseIp("0:0:0:0:0:0:0:1")!)).toBe("::1");
    expect(formatIp(parseIp("2001:db8:0:0:1:0:0:1")!)).toBe("2001:db8::1:0:0:1");
    expect(formatIp(parseIp("64:ff9b::192.0.2.33")!)).toBe("64:ff9b::c000:221");
  });

  it("folds IPv4-mapped IPv6 into IPv4 so a scope check sees the real address", () => {
    expect(parseIp("::ffff:10.1.2.3")).toEqual({ family: 4, value: 0x0a010203n });
    expect(parseCidr("::ffff:127.0.0.0/104")).toEqual({ family: 4, base: 0x7f000000n, prefix: 8 });
  });

  it("matches CIDR blocks", () => {
    const block = parseCidr("192.168.10.0/23")!;
    expect(cidrContains(block, parseIp("192.168.11.255")!)).toBe(true);
    expect(cidrContains(block, parseIp("192.168.12.0")!)).toBe(false);
    expect(cidrContains(parseCidr("::1/128")!, parseIp("::1")!)).toBe(true);
    expect(parseCidr("10.0.0.0/33")).toBeNull();
  });
});

describe("scope guard", () => {
  const noLookups = async (name: string): Promise<string[]> => {
    throw new Error(`unexpected lookup of ${name}`);
  };

  it("accepts loopback addresses and blocks by default", async () => {
    const resolved = await resolveTargets(["127.0.0.1", "::1", "127.0.0.8/30"], loopback, noLookups);
    expect(resolved.map((r) => r.address)).toEqual(["127.0.0.1", "::1", "127.0.0.8", "127.0.0.9", "127.0.0.10", "127.0.0.11"]);
  });

  it("refuses anything outside the allowed scope", async () => {
    expect(await refusal(resolveTargets(["10.0.0.1"], loopback, noLookups))).toBe("SCAN_TARGET_OUT_OF_SCOPE");
    expect(await refusal(resolveTargets(["::ffff:8.8.8.8"], loopback, noLookups))).toBe("SCAN_TARGET_OUT_OF_SCOPE");
    expect(await refusal(resolveTargets(["126.255.255.254/30"], loopback, noLookups))).toBe("SCAN_TARGET_OUT_OF_SCOPE");
    // One bad literal refuses the whole run, even beside good ones.
    expect(await refusal(resolveTargets(["127.0.0.1", "192.0.2.1"], loopback, noLookups))).toBe("SCAN_TARGET_OUT_OF_SCOPE");
  });

  it("checks every address a host name resolves to", async () => {
    const resolver = async (name: string) => (name === "camera.test" ? ["127.0.0.5", "192.0.2.7"] : ["127.0.0.6"]);
    expect(await refusal(resolveTargets(["camera.test"], loopback, resolver))).toBe("SCAN_TARGET_OUT_OF_SCOPE");
    expect(await resolveTargets(["gw.test"], loopback, resolver)).toEqual([{ target: "gw.test", address: "127.0.0.6", family: 4, hostname: "gw.test" }]);
  });

  it("widens the scope only with an explicit allow entry", async () => {
    const wider = parseAllowList(["192.0.2.0/24"]);
    expect((await resolveTargets(["192.0.2.0/28"], wider, noLookups)).length).toBe(16);
  });

  it("a run's scope is the configured one plus the run's own blocks, each once", () => {
    expect(runScope(DEFAULT_ALLOWED_TARGETS)).toEqual([...DEFAULT_ALLOWED_TARGETS]);
    expect(runScope(["127.0.0.0/8"], ["10.20.0.0/24", "127.0.0.0/8"])).toEqual(["127.0.0.0/8", "10.20.0.0/24"]);
  });

  it("refuses blocks over 65,536 addresses and malformed input", async () => {
    const everything = parseAllowList(["0.0.0.0/0", "::/0"]);
    expect(await refusal(resolveTargets(["10.0.0.0/15"], everything, noLookups))).toBe("SCAN_CIDR_TOO_LARGE");
    expect(await refusal(resolveTargets(["2001:db8::/111"], everything, noLookups))).toBe("SCAN_CIDR_TOO_LARGE");
    expect(await refusal(resolveTargets(["127.1"], loopback, noLookups))).toBe("SCAN_TARGET_INVALID");
    expect(await refusal(resolveTargets(["bad_name!"], loopback, noLookups))).toBe("SCAN_TARGET_INVALID");
    expect(await refusal(resolveTargets([], loopback, noLookups))).toBe("SCAN_TARGET_INVALID");
    expect(await refusal(resolveTargets(["nowhere.test"], loopback, async () => []))).toBe("SCAN_TARGET_UNRESOLVED");
    expect(() => parseAllowList(["10.0.0.0/8", "nonsense"])).toThrow(expect.objectContaining({ code: "SCAN_ALLOW_INVALID" }));
  });
});
