import { MoatError } from "../errors.js";
import { Fleet, type FleetOptions } from "./fleet.js";
import type { Scenario, ServerControl } from "./scenario.js";
import { compromise } from "./scenarios/compromise.js";
import { ota } from "./scenarios/ota.js";
import { outage } from "./scenarios/outage.js";
import { rotation } from "./scenarios/rotation.js";
import { steady } from "./scenarios/steady.js";

export const SCENARIOS: Readonly<Record<string, Scenario>> = { steady, compromise, rotation, ota, outage };
export type ScenarioName = "steady" | "compromise" | "rotation" | "ota" | "outage";
export const SCENARIO_NAMES = Object.keys(SCENARIOS) as ScenarioName[];

export interface SimulationOptions extends FleetOptions {
  scenario: ScenarioName;
  /** Messages per second per device. */
  rate: number;
  durationMs: number;
  /** Decommission the run's devices (and delete its role) afterwards. */
  cleanup: boolean;
  control?: ServerControl;
  note?: (message: string) => void;
  /** Aborting it (Ctrl-C) winds the run down early: the summary says `interrupted`, and cleanup still runs. */
  signal?: AbortSignal;
}

/** What `moat sim` prints (and `--json` writes): the shared counters plus the scenario's own fields. */
export interface SimulationSummary {
  runId: string;
  scenario: ScenarioName;
  devices: number;
  enrolled: number;
  connected: number;
  sent: number;
  received: number;
  denied: number;
  latencyMs: { p50: number | null; p99: number | null };
  errorsByCode: Record<string, number>;
  durationMs: number;
  cleanedUp: boolean;
  interrupted: boolean;
  [field: string]: unknown;
}

/** Refuses what a scenario cannot run with, before any device is created. */
export function checkScenario(name: string, devices: number, control: ServerControl): Scenario {
  const scenario = SCENARIOS[name];
  if (!scenario) throw new MoatError("SIM_OPTIONS_INVALID", `unknown scenario ${JSON.stringify(name)}; one of ${SCENARIO_NAMES.join(", ")}`);
  if (devices < scenario.minDevices) throw new MoatError("SIM_OPTIONS_INVALID", `scenario ${name} needs at least ${scenario.minDevices} devices`);
  for (const need of scenario.needs)
    if (!control[need])
      throw new MoatError(
        "SIM_SCENARIO_UNAVAILABLE",
        need === "restartBroker" ? `scenario ${name} restarts the broker: run it with --local (the simulator starts its own Moat)` : `scenario ${name} releases an OTA campaign with a throwaway signed image: run it with --local (the simulator starts its own Moat)`,
      );
  return scenario;
}

/**
 * One simulation run: the fleet is created, enrolled and connected, the scenario runs, and every
 * device is closed again (and decommissioned with `cleanup`), whatever happened in between.
 */
export async function runSimulation(options: SimulationOptions): Promise<SimulationSummary> {
  const control = options.control ?? {};
  const scenario = checkScenario(options.scenario, options.size, control);
  const note = options.note ?? (() => undefined);
  const fleet = new Fleet(options);
  const started = Date.now();
  if (options.signal?.aborted) fleet.interrupt();
  options.signal?.addEventListener("abort", () => fleet.interrupt(), { once: true });
  note(`run ${fleet.runId}: ${options.size} devices ${options.prefix}${fleet.runId}-1…${options.size}, scenario ${scenario.name}`);
  let fields: Record<string, unknown> = {};
  let cleanedUp = false;
  try {
    await fleet.start();
    note(`${fleet.stats.enrolled} enrolled, ${fleet.stats.connected} connected`);
    fields = await scenario.run({ fleet, rate: options.rate, durationMs: options.durationMs, control, note });
  } finally {
    await fleet.stop(options.cleanup).then(
      () => (cleanedUp = options.cleanup),
      (error: unknown) => {
        fleet.stats.error(error);
        note(`cleanup failed: ${(error as Error).message}`);
      },
    );
  }
  const stats = fleet.stats;
  return {
    runId: fleet.runId,
    scenario: options.scenario,
    devices: options.size,
    enrolled: stats.enrolled,
    connected: stats.connected,
    sent: stats.sent,
    received: stats.received,
    denied: stats.denied,
    latencyMs: { p50: stats.latency.percentile(50), p99: stats.latency.percentile(99) },
    errorsByCode: { ...stats.errorsByCode },
    durationMs: Date.now() - started,
    cleanedUp,
    interrupted: fleet.interrupted,
    ...fields,
  };
}
