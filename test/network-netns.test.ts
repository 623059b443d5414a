import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileNftables, FlowSimulator, loadPolicy, parseFlow } from "../src/network/index.js";
import { hasCommand, IS_ROOT, requirement } from "./helpers/requirements.js";
import { tempDir } from "./helpers/temp.js";
import { EXAMPLE_POLICY_PATH } from "./network-fixtures.js";

const run = promisify(execFile);

/**
 * The real enforcement test: a router namespace joined by veth pairs to one host namespace per VLAN
 * (plus the admin network and the broker), the example policy compiled and loaded into the router,
 * and real TCP connections that must pass or be dropped as the policy says. The policy's private
 * subnets exist only inside these namespaces; nothing touches the host's own network.
 */
const ok = requirement(
  "network namespaces (root, ip, nft)",
  IS_ROOT && hasCommand("ip") && hasCommand("nft"),
  "run as root with iproute2 and nftables installed (apt-get install -y iproute2 nftables), as CI does",
);

const suffix = randomBytes(3).toString("hex");
interface Host {
  key: string;
  address: string;
  router: string;
  prefix: number;
  listen: number[];
}
const HOSTS: Host[] = [
  { key: "s", address: "192.168.10.10", router: "192.168.10.1", prefix: 24, listen: [8883] }, // iot-sensors
  { key: "g", address: "192.168.20.10", router: "192.168.20.1", prefix: 24, listen: [22, 8883] }, // iot-gateways
  { key: "m", address: "192.168.30.10", router: "192.168.30.1", prefix: 24, listen: [2222] }, // iot-management
  { key: "b", address: "192.168.40.10", router: "192.168.40.1", prefix: 24, listen: [1883, 8883] }, // broker
  { key: "a", address: "10.0.0.10", router: "10.0.0.1", prefix: 24, listen: [2222] }, // admin_network
];
const ROUTER = `moat-${suffix}-r`;
const ns = (key: string) => `moat-${suffix}-${key}`;
const hostOf = (key: string) => HOSTS.find((h) => h.key === key)!;

/** A tiny TCP server: answers every connection with "moat-ok", prints "ready" once all ports listen. */
const SERVER = `const net=require("node:net");const ports=process.argv.slice(1).map(Number);let n=0;
for(const p of ports)net.createServer(s=>{s.on("error",()=>{});s.end("moat-ok")}).listen(p,"0.0.0.0",()=>{if(++n===ports.length)process.stdout.write("ready\\n")});`;
/**
 * Connects; prints "connected" once the server's greeting arrived, "timeout" if the TCP handshake did
 * not complete in time (a dropped SYN), or the error. The timer stops at the handshake, so a slow
 * server on a busy machine is not mistaken for a drop.
 */
const CLIENT = `const net=require("node:net");const[h,p,t]=process.argv.slice(1);const s=net.connect({host:h,port:+p});let got="";
const done=(m,c)=>{process.stdout.write(m);s.destroy();process.exit(c)};const timer=setTimeout(()=>done("timeout",1),+t);
s.on("connect",()=>{clearTimeout(timer);setTimeout(()=>done("no greeting",1),30000)});
s.on("data",d=>{got+=d;if(got==="moat-ok")done("connected",0)});s.on("error",e=>done("error "+e.code,1));`;

const listeners: ChildProcess[] = [];
const created: string[] = [];

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** Handshake timeout: a dropped SYN never completes, an allowed one completes in well under a second. */
const HANDSHAKE_MS = 2500;

async function connect(from: string, to: string, port: number): Promise<string> {
  try {
    const { stdout } = await run("ip", ["netns", "exec", ns(from), process.execPath, "-e", CLIENT, hostOf(to).address, String(port), String(HANDSHAKE_MS)], { timeout: 60_000 });
    return stdout;
  } catch (error) {
    return (error as { stdout?: string }).stdout || "failed";
  }
}

function startListener(host: Host): Promise<void> {
  const child = spawn("ip", ["netns", "exec", ns(host.key), process.execPath, "-e", SERVER, ...host.listen.map(String)], { stdio: ["ignore", "pipe", "inherit"] });
  listeners.push(child);
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => d.toString().includes("ready") && resolve());
    child.once("exit", (code) => reject(new Error(`listener in ${ns(host.key)} exited with ${code}`)));
  });
}

describe.skipIf(!ok)("the compiled ruleset enforces the policy between network namespaces", () => {
  const dir = tempDir("moat-netns-");
  const policy = loadPolicy(readFileSync(EXAMPLE_POLICY_PATH, "utf8"));
  const simulator = new FlowSimulator(policy);
  const baseline: Record<string, string> = {};

  beforeAll(async () => {
    ip("netns", "add", ROUTER);
    created.push(ROUTER);
    ip("-n", ROUTER, "link", "set", "lo", "up");
    execFileSync("ip", ["netns", "exec", ROUTER, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    for (const host of HOSTS) {
      ip("netns", "add", ns(host.key));
      created.push(ns(host.key));
      // Both ends are created straight inside their namespaces: the host's own namespace never sees them.
      const routerEnd = `m${suffix}${host.key}r`;
      const hostEnd = `m${suffix}${host.key}h`;
      ip("link", "add", "name", routerEnd, "netns", ROUTER, "type", "veth", "peer", "name", hostEnd, "netns", ns(host.key));
      ip("-n", ROUTER, "addr", "add", `${host.router}/${host.prefix}`, "dev", routerEnd);
      ip("-n", ROUTER, "link", "set", routerEnd, "up");
      ip("-n", ns(host.key), "addr", "add", `${host.address}/${host.prefix}`, "dev", hostEnd);
      ip("-n", ns(host.key), "link", "set", hostEnd, "up");
      ip("-n", ns(host.key), "link", "set", "lo", "up");
      ip("-n", ns(host.key), "route", "add", "default", "via", host.router);
    }
    await Promise.all(HOSTS.map(startListener));
    // Before the ruleset: every flow below connects, so a later failure is the firewall's doing.
    for (const [from, to, port] of [["s", "g", 22], ["s", "m", 2222], ["a", "b", 8883], ["g", "s", 8883]] as const)
      baseline[`${from}-${to}:${port}`] = await connect(from, to, port);
    const script = join(dir.path, "moat.nft");
    writeFileSync(script, compileNftables(policy));
    execFileSync("ip", ["netns", "exec", ROUTER, "nft", "-f", script]);
  });

  afterAll(() => {
    for (const child of listeners) if (child.exitCode === null) child.kill("SIGTERM");
    // Deleting a namespace removes the veth ends inside it.
    for (const name of created.reverse()) spawnSyncQuiet("ip", ["netns", "del", name]);
    dir.cleanup();
    const left = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
    expect(left).not.toContain(`moat-${suffix}-`);
  });

  it("routing works before the ruleset is loaded", () => {
    expect(baseline).toEqual({ "s-g:22": "connected", "s-m:2222": "connected", "a-b:8883": "connected", "g-s:8883": "connected" });
  });

  const flows: [string, string, string, number, "connected" | "dropped"][] = [
    ["sensors -> broker:8883", "s", "b", 8883, "connected"],
    ["sensors -> broker:1883", "s", "b", 1883, "connected"],
    ["gateways -> broker:8883", "g", "b", 8883, "connected"],
    ["admin -> management:2222 (any port)", "a", "m", 2222, "connected"],
    ["admin -> gateways:22", "a", "g", 22, "connected"],
    ["sensors -> gateways:22", "s", "g", 22, "dropped"],
    ["sensors -> gateways:8883 (egress allows, gateways' ingress denies)", "s", "g", 8883, "dropped"],
    ["sensors -> management:2222", "s", "m", 2222, "dropped"],
    ["gateways -> sensors:8883", "g", "s", 8883, "dropped"],
    ["management -> admin:2222 (management opens nothing)", "m", "a", 2222, "dropped"],
    ["admin -> broker:8883 (touches no VLAN)", "a", "b", 8883, "dropped"],
  ];

  it("allowed flows connect, denied flows do not, and the simulator predicted each", async () => {
    const results = await Promise.all(flows.map(([, from, to, port]) => connect(from, to, port)));
    const observed = flows.map(([label], i) => [label, results[i] === "connected" ? "connected" : results[i] === "timeout" ? "dropped" : results[i]]);
    expect(observed).toEqual(flows.map(([label, , , , expected]) => [label, expected]));
    for (const [label, from, to, port, expected] of flows) {
      const decision = simulator.decide(parseFlow({ from: hostOf(from).address, to: hostOf(to).address, port })).decision;
      expect([label, decision]).toEqual([label, expected === "connected" ? "allow" : "deny"]);
    }
  });

  it("the dropping rules counted the denied packets", () => {
    const listing = execFileSync("ip", ["netns", "exec", ROUTER, "nft", "list", "chain", "inet", "moat_segmentation", "vlan_10_egress"], { encoding: "utf8" });
    const denyAll = listing.split("\n").find((l) => l.includes("iot-sensors rule 3"))!;
    expect(denyAll).toMatch(/counter packets [1-9]\d* bytes \d+ log prefix "moat drop vlan 10 iot-sensors egress: " drop/);
  });
});

function spawnSyncQuiet(command: string, args: string[]): void {
  try {
    execFileSync(command, args, { stdio: "ignore" });
  } catch {
    // Already gone.
  }
}
