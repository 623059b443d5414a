/**
 * Network segmentation: compile time for 1,000 VLANs and 10,000 rules (200 / 2,000 with --quick),
 * beside `nft -c -f` checking the compiled ruleset in the same run (the kernel-side reference for the
 * same policy; needs root and nftables, else the reference is null); and flow decisions per second
 * in the simulator (no reference tool).
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BenchContext, BenchRow } from "./harness.js";
import { analyzePolicy, compileNftables, FlowSimulator, loadPolicy, type Flow } from "../src/network/index.js";

const RULES_PER_VLAN = 10;

function subnetOf(i: number): string {
  return `10.${i >> 8}.${i & 255}.0/24`;
}

/** A policy of `vlans` VLANs with ten rules each, every rule shape the compiler writes. */
function generatePolicy(vlans: number): string {
  const lines = [
    "networks:",
    "  admin_network: {subnet: 172.16.0.0/24, management: true}",
    "  broker: 172.17.0.10/32",
    "  timeservers: [172.18.0.0/24, 172.18.5.0/24]",
    "vlans:",
  ];
  for (let i = 1; i <= vlans; i++) {
    const neighbour = i === 1 ? vlans : i - 1;
    lines.push(`  - id: ${i}`, `    name: vlan-${i}`, `    subnet: ${subnetOf(i)}`, "    firewall_rules:");
    lines.push(
      "      - allow: mqtt (8883) to broker",
      "      - allow: https (443)",
      "      - {action: allow, service: ntp, to: timeservers}",
      "      - {action: allow, ports: [53], proto: any, to: 172.18.0.53}",
      "      - allow: ssh (22) from admin_network",
      `      - {action: allow, ports: [9000], from: vlan-${neighbour}, to: ${subnetOf(i).replace(/0\/24$/, "7")}}`,
      "      - allow: (8000-8010) to broker",
      "      - {action: deny, ports: [8443], proto: tcp, from: admin_network}",
      "      - allow: all from admin_network",
      "      - deny: all",
    );
  }
  return lines.join("\n") + "\n";
}

function seconds<T>(fn: () => T): { value: T; seconds: number } {
  const start = process.hrtime.bigint();
  const value = fn();
  return { value, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

/** Median of `runs` timings (the first run warms the JIT). */
function medianSeconds(runs: number, fn: () => unknown): number {
  fn();
  const times = Array.from({ length: runs }, () => seconds(fn).seconds).sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

export default async function segmentBench(ctx: BenchContext): Promise<BenchRow[]> {
  const vlans = ctx.quick ? 200 : 1000;
  const rules = vlans * RULES_PER_VLAN;
  const text = generatePolicy(vlans);
  ctx.log(`policy: ${vlans} VLANs, ${rules} rules, ${(text.length / 1024).toFixed(0)} KiB of YAML`);
  const analysis = analyzePolicy(text);
  if (!analysis.valid) throw new Error(`generated policy is invalid: ${analysis.diagnostics.find((d) => d.severity === "error")?.message}`);

  const totalSeconds = medianSeconds(3, () => compileNftables(loadPolicy(text)));
  const policy = loadPolicy(text);
  const compileOnlySeconds = medianSeconds(3, () => compileNftables(policy));
  const script = compileNftables(policy);
  const path = join(ctx.tmpDir, "segment.nft");
  writeFileSync(path, script);
  ctx.log(`compiled ${script.length} bytes; checking with nft -c -f`);

  let nftSeconds: number | null = null;
  const nftCheck = seconds(() => spawnSync("nft", ["-c", "-f", path], { encoding: "utf8" }));
  if (nftCheck.value.status === 0) nftSeconds = nftCheck.seconds;
  else ctx.log(`nft -c unavailable or failed (${nftCheck.value.error?.message ?? nftCheck.value.stderr.trim().split("\n")[0]}): reference left empty`);

  // Flows from random VLAN hosts to random VLAN hosts, the broker or outside, on a spread of ports.
  const simulator = new FlowSimulator(policy);
  let seed = 0x9e3779b9;
  const random = () => ((seed ^= seed << 13), (seed ^= seed >>> 17), (seed ^= seed << 5), (seed >>> 0) / 2 ** 32);
  const ports = [22, 53, 443, 8005, 8443, 8883, 9000, 31337];
  const hostIn = (i: number) => ((10 << 24) | ((i >> 8) << 16) | ((i & 255) << 8) | (1 + Math.floor(random() * 250))) >>> 0;
  const flows: Flow[] = Array.from({ length: 100_000 }, () => {
    const r = random();
    const dst = r < 0.6 ? hostIn(1 + Math.floor(random() * vlans)) : r < 0.8 ? ((172 << 24) | (17 << 16) | 10) >>> 0 : ((172 << 24) | (16 << 16) | 5) >>> 0;
    const src = r >= 0.8 ? hostIn(1 + Math.floor(random() * vlans)) : hostIn(1 + Math.floor(random() * vlans));
    return { src: r >= 0.9 ? ((172 << 24) | (16 << 16) | 9) >>> 0 : src, dst, port: ports[Math.floor(random() * ports.length)]!, proto: random() < 0.8 ? "tcp" : "udp" };
  });
  let allowed = 0;
  const decide = () => {
    allowed = 0;
    for (const flow of flows) if (simulator.decide(flow).decision === "allow") allowed++;
  };
  const decideSeconds = medianSeconds(3, decide);
  ctx.log(`${allowed} of ${flows.length} sampled flows allowed`);

  return [
    {
      measure: `segment compile: parse + validate + nftables, ${vlans} VLANs / ${rules} rules`,
      moat: totalSeconds * 1000,
      reference: nftSeconds === null ? null : nftSeconds * 1000,
      referenceName: "nft -c -f of the compiled ruleset",
      unit: "ms",
      higherIsBetter: false,
      note: `compile step alone ${(compileOnlySeconds * 1000).toFixed(1)} ms; ${(script.length / 1024).toFixed(0)} KiB of nft`,
    },
    {
      measure: `segment simulator: flow decisions, ${vlans} VLANs / ${rules} rules`,
      moat: flows.length / decideSeconds,
      reference: null,
      unit: "decisions/s",
      higherIsBetter: true,
      note: `${flows.length} flows, ${((allowed / flows.length) * 100).toFixed(0)}% allowed`,
    },
  ];
}
