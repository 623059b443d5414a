/**
 * Detection's Prometheus metrics, in a registry of their own that the API's `/metrics` appends (like
 * the broker's). Per group, never per device: a fleet of 100,000 devices is a handful of series.
 */
import { Gauge, Registry } from "prom-client";
import type { AlertService } from "./alerts.js";
import type { DetectionEngine } from "./engine.js";

const SERIES = [
  ["devices", "moat_detect_group_devices", "Devices with metric state, by group"],
  ["messagesSent", "moat_detect_group_messages_sent_60s", "Messages published by the group's devices over the last 60 s"],
  ["messagesReceived", "moat_detect_group_messages_received_60s", "Messages delivered to the group's devices over the last 60 s"],
  ["bytesSent", "moat_detect_group_bytes_sent_60s", "Payload bytes published by the group's devices over the last 60 s"],
  ["authFailures", "moat_detect_group_auth_failures_60s", "Authentication failures of the group's devices over the last 60 s"],
  ["deniedPublishes", "moat_detect_group_denied_60s", "Publishes and subscriptions of the group's devices the policy refused over the last 60 s"],
  ["connectAttempts", "moat_detect_group_connect_attempts_60s", "Connection attempts of the group's devices over the last 60 s"],
  ["disconnects", "moat_detect_group_disconnects_60s", "Disconnects of the group's devices over the last 60 s"],
] as const;

export function createDetectMetrics(engine: DetectionEngine, alerts: Pick<AlertService, "countUnresolved">): Registry {
  const registry = new Registry();
  const registers = [registry];
  let cached: { at: number; value: Map<string, Record<string, number>> } | null = null;
  // One pass over the devices per scrape, shared by every series.
  const summaries = () => {
    const now = Date.now();
    if (!cached || now - cached.at > 1000) cached = { at: now, value: engine.groupSummaries() };
    return cached.value;
  };
  for (const [field, name, help] of SERIES)
    new Gauge({
      name,
      help,
      labelNames: ["group"],
      registers,
      collect() {
        this.reset();
        for (const [group, summary] of summaries()) this.set({ group: group || "(none)" }, summary[field] ?? 0);
      },
    });
  new Gauge({
    name: "moat_detect_alerts_unresolved",
    help: "Open or acknowledged alerts by severity",
    labelNames: ["severity"],
    registers,
    async collect() {
      this.reset();
      for (const [severity, count] of Object.entries(await alerts.countUnresolved())) this.set({ severity }, count);
    },
  });
  return registry;
}
