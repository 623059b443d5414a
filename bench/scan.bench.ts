/**
 * Full-range TCP connect scan of 127.0.0.1 (ports 1-65535), Moat's scanner against
 * `nmap -sT -T4 -p- 127.0.0.1` in the same run, alternating so both see the same machine load.
 * Reports the median wall time of each and whether the open-port sets agree.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { BenchContext, BenchRow } from "./harness.js";
import { runScan } from "../src/scanner/index.js";
import { nmapOpenPorts } from "../test/scanner/nmap-output.js";

const run = promisify(execFile);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Settings comparable to nmap's -T4 (aggressive timing: 1.25 s max RTT timeout, no rate cap). */
const AGGRESSIVE = { concurrency: 1024, ratePerSecond: 1_000_000, portTimeoutMs: 1_250 } as const;

export default async function (ctx: BenchContext): Promise<BenchRow[]> {
  const lastPort = ctx.quick ? 16_384 : 65_535;
  const rounds = ctx.quick ? 1 : 3;
  const moatTimes: number[] = [];
  const nmapTimes: number[] = [];
  const disagreements: string[] = [];
  let moatPorts: number[] = [];
  let nmapPorts: number[] = [];
  let hasNmap = true;
  for (let round = 1; round <= rounds; round++) {
    ctx.log(`scan bench round ${round}/${rounds}: moat 1-${lastPort}`);
    let started = performance.now();
    const result = await runScan({ targets: ["127.0.0.1"], ports: `1-${lastPort}`, detectServices: false, ...AGGRESSIVE });
    moatTimes.push((performance.now() - started) / 1000);
    moatPorts = result.hosts[0]!.ports.map((p) => p.port);
    if (!hasNmap) continue;
    ctx.log(`scan bench round ${round}/${rounds}: nmap -sT -T4 -p1-${lastPort}`);
    started = performance.now();
    try {
      const { stdout } = await run("nmap", ["-sT", "-T4", "-n", "-Pn", `-p1-${lastPort}`, "-oG", "-", "127.0.0.1"], { maxBuffer: 16 * 1024 * 1024 });
      nmapTimes.push((performance.now() - started) / 1000);
      nmapPorts = nmapOpenPorts(stdout);
    } catch (error) {
      ctx.log(`nmap failed or is missing: ${(error as Error).message}`);
      hasNmap = false;
      continue;
    }
    const onlyMoat = moatPorts.filter((p) => !nmapPorts.includes(p));
    const onlyNmap = nmapPorts.filter((p) => !moatPorts.includes(p));
    if (onlyMoat.length || onlyNmap.length) disagreements.push(`round ${round}: only moat [${onlyMoat.join(",")}], only nmap [${onlyNmap.join(",")}]`);
  }
  const agreement = !hasNmap
    ? "nmap not installed: no comparison"
    : disagreements.length === 0
      ? `open ports agree in every round (${moatPorts.length}: ${moatPorts.join(",")})`
      : // Other processes open and close loopback listeners between the two scans; list the difference.
        `open ports differ: ${disagreements.join("; ")}`;
  return [
    {
      measure: `TCP connect scan 127.0.0.1 ports 1-${lastPort} (median of ${rounds})`,
      moat: Number(median(moatTimes).toFixed(2)),
      reference: hasNmap ? Number(median(nmapTimes).toFixed(2)) : null,
      referenceName: `nmap -sT -T4 -p1-${lastPort}`,
      unit: "s",
      higherIsBetter: false,
      goal: ">= 1x",
      note: `${agreement}; moat --concurrency ${AGGRESSIVE.concurrency} --rate ${AGGRESSIVE.ratePerSecond} --port-timeout ${AGGRESSIVE.portTimeoutMs}ms, native tcp_wrap connector`,
    },
  ];
}
