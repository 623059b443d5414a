/**
 * Measurements the MQTT benches share: connect rate and delivery rate of one broker under the load
 * generator, each with the CPU of the broker, of the generator and of everything else on the machine
 * over the measured window, and RSS sampling. The benches interleave brokers round by round.
 */
import type { Target } from "./connection.js";
import { generatorCpu, percentile, type LoadGenerator } from "./generator.js";
import { CpuWindow } from "./proc.js";


export const median = (values: number[]) => percentile(values, 50);
export const range = (values: number[], digits = 0) => `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
export const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface BrokerUnderTest {
  name: string;
  pid: number;
  target: Target;
  /** RSS in KiB at steady state (Moat: after a forced GC). */
  rss(): Promise<number>;
}

/** The CPU of the broker, the generator's workers and everything else, over [fromMs, toMs] after now, while `work` runs. */
async function cpuDuring<T>(pids: number[], fromMs: number, toMs: number, work: Promise<T>): Promise<{ result: T; perPid: number[]; machine: number }> {
  let window: CpuWindow | null = null;
  let measured: ReturnType<CpuWindow["end"]> | null = null;
  const first = sleep(fromMs).then(() => (window = new CpuWindow(pids)));
  const second = sleep(toMs).then(() => (measured = window!.end()));
  const result = await work;
  await Promise.all([first, second]);
  return { result, perPid: measured!.perPid, machine: measured!.machine };
}

export interface RateSample {
  rate: number;
  generatorCores: number;
  brokerCores: number;
  /** Cores used by other processes on the machine meanwhile. */
  otherCores: number;
  note?: string;
}

export async function connectRate(load: LoadGenerator, broker: BrokerUnderTest, perWorker: number): Promise<RateSample> {
  const window = new CpuWindow([broker.pid, ...load.pids]);
  const results = await load.all("connect-rate", { target: broker.target, count: perWorker, concurrency: 20 });
  const cpu = window.end();
  const wall = Math.max(...results.map((r) => r.wallMs));
  const failed = sum(results.map((r) => r.failed));
  if (failed > 0) throw new Error(`${broker.name}: ${failed} connects failed: ${JSON.stringify(results.map((r) => r.errors))}`);
  return {
    rate: (sum(results.map((r) => r.ok)) / wall) * 1000,
    generatorCores: generatorCpu(results).cores,
    brokerCores: cpu.perPid[0]!,
    otherCores: cpu.others(sum(cpu.perPid)),
    note: results[0]!.negotiated ?? undefined,
  };
}

export async function deliveryRate(load: LoadGenerator, broker: BrokerUnderTest, qos: 0 | 1, sizes: { pairs: number; inflight: number; windowMs: number; payloadBytes: number }): Promise<RateSample> {
  const warmupMs = 1000;
  const { result: results, perPid, machine } = await cpuDuring(
    [broker.pid, ...load.pids],
    warmupMs + 200,
    warmupMs + sizes.windowMs - 100,
    load.all("flow", { target: broker.target, pairs: sizes.pairs, qos, warmupMs, windowMs: sizes.windowMs, inflight: sizes.inflight, payloadBytes: sizes.payloadBytes }),
  );
  const refused = sum(results.map((r) => r.subscribeRefused));
  if (refused > 0) throw new Error(`${broker.name}: ${refused} subscriptions refused`);
  const windowMs = Math.max(...results.map((r) => r.windowMs));
  return { rate: (sum(results.map((r) => r.delivered)) / windowMs) * 1000, generatorCores: generatorCpu(results).cores, brokerCores: perPid[0]!, otherCores: Math.max(0, machine - sum(perPid)) };
}

/** Several RSS samples, a short pause apart. */
export async function rssSamples(broker: BrokerUnderTest, count: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    samples.push(await broker.rss());
    await sleep(300);
  }
  return samples;
}

