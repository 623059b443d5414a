/**
 * What /proc tells about the processes of a bench run and about the machine: resident memory, CPU
 * time of one process, and CPU time of the whole machine, so a figure can be reported next to how
 * much of the two cores other work (other benches, builds, tests) took while it was measured.
 */
import { readFileSync } from "node:fs";

/** VmRSS of a process in KiB (from /proc). */
export function rssKiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) : 0;
}

/** User + system CPU time of a process so far, in ms (from /proc/PID/stat, clock ticks of 10 ms). */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of proc(5) (utime, stime) are at 11 and 12 after the command name.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** Busy CPU time of the whole machine so far (all cores, everything but idle and iowait), in ms. */
export function machineBusyMs(): number {
  const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - fields[3]! - fields[4]!) * 10;
}

/** CPU in use over an interval: the given processes (by name) and everything else on the machine, in cores. */
export class CpuWindow {
  private readonly startMachine = machineBusyMs();
  private readonly startProcesses: number[];
  private readonly startedAt = performance.now();

  constructor(private readonly pids: number[]) {
    this.startProcesses = pids.map(processCpuMs);
  }

  /** Cores busy since the start: per pid (in order), and `others` for the rest of the machine. */
  end(): { perPid: number[]; machine: number; others: (alsoOurs: number) => number } {
    const wall = performance.now() - this.startedAt;
    const perPid = this.pids.map((pid, i) => (processCpuMs(pid) - this.startProcesses[i]!) / wall);
    const machine = (machineBusyMs() - this.startMachine) / wall;
    return { perPid, machine, others: (alsoOurs) => Math.max(0, machine - alsoOurs) };
  }
}
