import type { Scenario } from "../scenario.js";

/** The fleet publishes telemetry at the given rate for the duration; the collector measures delivery. */
export const steady: Scenario = {
  name: "steady",
  description: "every device publishes telemetry (QoS 1) at --rate for --duration",
  minDevices: 1,
  needs: [],
  async run({ fleet, rate, durationMs }) {
    fleet.startTelemetry(rate);
    await fleet.hold(durationMs);
    fleet.stopTelemetry();
    return { lost: await fleet.drain() };
  },
};
