/**
 * A small metrics registry rendering the Prometheus text exposition format (version 0.0.4), so the
 * API's `/metrics` can serve the broker's counters without a client library.
 */

type Labels = Readonly<Record<string, string>>;

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return "";
  return "{" + keys.map((k) => `${k}="${escapeLabelValue(labels[k]!)}"`).join(",") + "}";
}

interface Metric {
  readonly name: string;
  render(): string;
}

/** A monotonically increasing count, optionally split by labels. */
export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    private readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }

  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [key, value] of this.values) lines.push(`${this.name}${key} ${value}`);
    return lines.join("\n");
  }
}

/** A value that goes up and down; either set directly or read from a callback at render time. */
export class Gauge implements Metric {
  private value = 0;
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly read?: () => number,
  ) {}

  set(value: number): void {
    this.value = value;
  }

  get(): number {
    return this.read ? this.read() : this.value;
  }

  render(): string {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, `${this.name} ${this.get()}`].join("\n");
  }
}

/** Cumulative buckets plus sum and count, as Prometheus histograms are. */
export class Histogram implements Metric {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly buckets: readonly number[],
  ) {
    this.counts = buckets.map(() => 0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count += 1;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) this.counts[i]! += 1;
  }

  snapshot(): { count: number; sum: number } {
    return { count: this.count, sum: this.sum };
  }

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((bound, i) => lines.push(`${this.name}_bucket{le="${bound}"} ${this.counts[i]}`));
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`, `${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join("\n");
  }
}

/** Holds metrics by name and renders them all. */
export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>();

  register<M extends Metric>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new TypeError(`metric ${metric.name} is already registered`);
    this.metrics.set(metric.name, metric);
    return metric;
  }

  /** The Prometheus text exposition (content type `text/plain; version=0.0.4`). */
  render(): string {
    return [...this.metrics.values()].map((m) => m.render()).join("\n") + "\n";
  }
}

/** The broker's metrics. */
export interface BrokerMetrics {
  registry: MetricsRegistry;
  connections: Gauge;
  connectsAccepted: Counter;
  messagesIn: Counter;
  messagesOut: Counter;
  denials: Counter;
  authFailures: Counter;
  sessionsClosed: Counter;
  enforcementLatency: Histogram;
}

/** Creates the broker metrics in `registry`; `connectionCount` is read at render time. */
export function createBrokerMetrics(connectionCount: () => number, registry = new MetricsRegistry()): BrokerMetrics {
  return {
    registry,
    connections: registry.register(new Gauge("moat_mqtt_connections", "Open authenticated MQTT sessions on this node", connectionCount)),
    connectsAccepted: registry.register(new Counter("moat_mqtt_connects_total", "Accepted MQTT connections by method")),
    messagesIn: registry.register(new Counter("moat_mqtt_messages_in_total", "PUBLISH packets accepted from clients")),
    messagesOut: registry.register(new Counter("moat_mqtt_messages_out_total", "PUBLISH packets delivered to clients")),
    denials: registry.register(new Counter("moat_mqtt_denials_total", "Denied operations by action and reason")),
    authFailures: registry.register(new Counter("moat_mqtt_auth_failures_total", "Refused MQTT connections by reason")),
    sessionsClosed: registry.register(new Counter("moat_mqtt_sessions_closed_total", "Sessions closed by enforcement, by cause")),
    enforcementLatency: registry.register(
      new Histogram(
        "moat_mqtt_enforcement_seconds",
        "Time from a change-feed entry being written to the affected sessions being closed or narrowed",
        [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      ),
    ),
  };
}
