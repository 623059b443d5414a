/**
 * The broker's Prometheus metrics, kept with prom-client like the API's (src/api/metrics.ts), in a
 * registry of their own that the API's `/metrics` appends (the app's metrics sources).
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export { Registry as MetricsRegistry };

/**
 * The broker's metrics. Labels are declared; call sites pass them in the declared order, since a
 * series prints its labels in the order they were first given.
 */
export interface BrokerMetrics {
  registry: Registry;
  connections: Gauge;
  connectsAccepted: Counter<"method">;
  messagesIn: Counter;
  messagesOut: Counter;
  denials: Counter<"action" | "reason">;
  authFailures: Counter<"reason">;
  sessionsClosed: Counter<"cause">;
  enforcementLatency: Histogram;
}

/** Creates the broker metrics in `registry`; `connectionCount` is read at scrape time. */
export function createBrokerMetrics(connectionCount: () => number, registry = new Registry()): BrokerMetrics {
  const registers = [registry];
  return {
    registry,
    connections: new Gauge({
      name: "moat_mqtt_connections",
      help: "Open authenticated MQTT sessions on this node",
      registers,
      collect() {
        this.set(connectionCount());
      },
    }),
    connectsAccepted: new Counter({ name: "moat_mqtt_connects_total", help: "Accepted MQTT connections by method", labelNames: ["method"], registers }),
    messagesIn: new Counter({ name: "moat_mqtt_messages_in_total", help: "PUBLISH packets accepted from clients", registers }),
    messagesOut: new Counter({ name: "moat_mqtt_messages_out_total", help: "PUBLISH packets delivered to clients", registers }),
    denials: new Counter({ name: "moat_mqtt_denials_total", help: "Denied operations by action and reason", labelNames: ["action", "reason"], registers }),
    authFailures: new Counter({ name: "moat_mqtt_auth_failures_total", help: "Refused MQTT connections by reason", labelNames: ["reason"], registers }),
    sessionsClosed: new Counter({ name: "moat_mqtt_sessions_closed_total", help: "Sessions closed by enforcement, by cause", labelNames: ["cause"], registers }),
    enforcementLatency: new Histogram({
      name: "moat_mqtt_enforcement_seconds",
      help: "Time from a change-feed entry being written to the affected sessions being closed or narrowed",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
  };
}
