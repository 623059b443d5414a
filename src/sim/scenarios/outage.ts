import { LatencyRecorder } from "../stats.js";
import type { Scenario } from "../scenario.js";

/**
 * The broker goes away for a moment and comes back (`--local`: the simulator runs the server, so it
 * can restart the broker): every device loses its connection, and the SDK's jittered exponential
 * back-off brings the fleet back without a thundering herd. The summary gives the time from the broker's
 * return until every device was connected again, and the spread of the individual reconnects.
 */
export const outage: Scenario = {
  name: "outage",
  description: "the broker restarts; time until the whole fleet is back (needs --local)",
  minDevices: 1,
  needs: ["restartBroker"],
  async run({ fleet, rate, durationMs, control, note }) {
    const live = fleet.devices.filter((d) => d.device && d.connected);
    fleet.startTelemetry(rate);
    await fleet.hold(durationMs / 3);
    // Telemetry pauses over the outage: with the collector away too, a message the broker accepted in
    // that gap has no subscriber yet, which is not a loss by the broker.
    fleet.stopTelemetry();
    const lostBefore = await fleet.drain();
    const downMs = 1_000;
    note(`the broker stops for ${downMs / 1000} s with ${live.length} devices connected`);
    // A device is back at its first connection after the broker went down (every connection was cut
    // then); counted from the connection events alone, whatever the SDK reports in between.
    const backAt = new Map<string, number>();
    const stopListening = live.map((d) => {
      const listener = (event: { state: string }) => {
        if (event.state === "connected" && !backAt.has(d.id)) backAt.set(d.id, Date.now());
      };
      d.listeners.add(listener);
      return () => d.listeners.delete(listener);
    });
    await control.restartBroker!(downMs);
    const upAt = Date.now();
    note("the broker is back; waiting for every device to reconnect");
    await fleet.waitFor(() => backAt.size === live.length || live.every((d) => backAt.has(d.id) || d.stoppedCode !== null), 180_000);
    for (const stop of stopListening) stop();
    const reconnect = new LatencyRecorder();
    for (const at of backAt.values()) reconnect.record(Math.max(0, at - upAt));
    const allBack = backAt.size === live.length;
    const allBackMs = allBack ? Math.max(0, ...[...backAt.values()].map((at) => at - upAt)) : null;
    await fleet.waitFor(() => fleet.collectorConnected(), 60_000);
    fleet.startTelemetry(rate);
    await fleet.hold(durationMs / 3);
    fleet.stopTelemetry();
    const lost = lostBefore + (await fleet.drain());
    return {
      brokerDownMs: downMs,
      devicesBack: backAt.size,
      allBack,
      allBackMs,
      reconnectMs: { p50: reconnect.percentile(50), p99: reconnect.percentile(99) },
      lost,
    };
  },
};
