import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { MoatError } from "../errors.js";
import type { AdminApi } from "./admin-api.js";
import type { ConnectionEvent, DeviceFactory, FleetDevice } from "./fleet-device.js";
import { RunStats } from "./stats.js";

/** One simulated device: its id, its SDK object once enrolled, and what the simulator saw of it. */
export interface SimulatedDevice {
  id: string;
  index: number;
  device: FleetDevice | null;
  connected: boolean;
  /** Set when the SDK stopped for good, with its code. */
  stoppedCode: string | null;
  /** Telemetry sequence number of the next message. */
  seq: number;
  /** When the collector last received a message from it (ms since epoch). */
  lastReceivedAt: number;
  /** Messages received from it, by sequence number (duplicates from QoS 1 redelivery count once). */
  receivedSeqs: Set<number>;
  /** Sequence numbers the broker acknowledged (PUBACK). */
  ackedSeqs: Set<number>;
  /** Called on every connection change (scenarios wait on these). */
  listeners: Set<(event: ConnectionEvent) => void>;
  unwatch: () => void;
}

export interface FleetOptions {
  api: AdminApi;
  factory: DeviceFactory;
  /** The API base URL devices enroll against, and Moat's CA bundle (PEM). */
  server: string;
  ca: string;
  /** The MQTT URL; omitted: the one the server advertises at GET /v1/info. */
  mqttUrl?: string;
  /** Device ids are `<prefix><run id>-<n>`. */
  prefix: string;
  size: number;
  /** Where each device's folder goes (`<workDir>/<device id>`). */
  workDir: string;
  /** Enrollments and connects in flight at once. */
  concurrency?: number;
  progress?: (phase: string, done: number, total: number) => void;
}

/** A short lower-case id for one run, so the device ids of two runs never collide. */
export function newRunId(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = randomBytes(6);
  // The first character is a letter: the run id also names a role, which must start with one.
  return [...bytes].map((b, i) => (i === 0 ? alphabet[b % 26] : alphabet[b % alphabet.length])).join("");
}

const PREFIX = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$|^$/;

/** Parses a telemetry payload the fleet sent: `{"d":index,"n":seq,"t":sentAtMs}`. */
function parseTelemetry(payload: Buffer): { d: number; n: number; t: number } | null {
  try {
    const value = JSON.parse(payload.toString("utf8")) as { d?: unknown; n?: unknown; t?: unknown };
    if (typeof value.d === "number" && typeof value.n === "number" && typeof value.t === "number") return { d: value.d, n: value.n, t: value.t };
  } catch {
    // Not ours: counted as nothing.
  }
  return null;
}

/**
 * A simulated fleet against a running Moat: N devices created and enrolled through the API with
 * one-time tokens, connected over mTLS, publishing telemetry at QoS 1 to
 * `devices/<id>/telemetry/<run id>`, and one collector device (a role of this run lets it read those
 * topics) that measures delivery and latency end to end.
 */
export class Fleet {
  readonly runId = newRunId();
  readonly stats = new RunStats();
  readonly devices: SimulatedDevice[] = [];
  readonly group: string;
  readonly collectorRole: string;
  private collector: SimulatedDevice | null = null;
  private telemetryTimers: NodeJS.Timeout[] = [];
  /** Telemetry publishes still waiting for their PUBACK (or error). */
  private inFlight = 0;
  private roleCreated = false;
  /** Forged messages the collector received (a device's telemetry topic carrying another's payload). */
  forgedDelivered = 0;
  private readonly forgeryMarkers = new Set<string>();
  /** Everything the collector receives, raw (the demo shows what the broker relayed). */
  readonly collected = new Set<(topic: string, payload: Buffer) => void>();

  constructor(readonly options: FleetOptions) {
    if (!PREFIX.test(options.prefix)) throw new MoatError("SIM_OPTIONS_INVALID", `prefix ${JSON.stringify(options.prefix)} may hold only A-Z a-z 0-9 . _ - (at most 64), starting with a letter or digit`);
    if (!Number.isSafeInteger(options.size) || options.size < 1) throw new MoatError("SIM_OPTIONS_INVALID", "a fleet needs at least one device");
    this.group = `${options.prefix}${this.runId}`.slice(0, 64);
    this.collectorRole = `sim-collector-${this.runId}`;
    for (let n = 1; n <= options.size; n++) this.devices.push(this.blank(`${options.prefix}${this.runId}-${n}`, n));
  }

  /** The topic a device's telemetry goes to in this run. */
  telemetryTopic(deviceId: string): string {
    return `devices/${deviceId}/telemetry/${this.runId}`;
  }

  /** Creates, enrolls (EST, one-time token) and connects every device and the collector. */
  async start(): Promise<void> {
    await this.options.api.createRole(this.collectorRole, `moat sim run ${this.runId}: reads the run's telemetry`, [
      { effect: "allow", action: "subscribe", resource: `devices/+/telemetry/${this.runId}` },
      { effect: "allow", action: "receive", resource: `devices/+/telemetry/${this.runId}` },
    ]);
    this.roleCreated = true;
    const collector = this.blank(`${this.options.prefix}${this.runId}-collector`, 0);
    await this.enroll(collector);
    await this.options.api.assignRole(this.collectorRole, collector.id);
    await this.connect(collector);
    await collector.device!.subscribe(`devices/+/telemetry/${this.runId}`, (topic, payload) => this.collect(topic, payload));
    this.collector = collector;

    await this.each("enrolling", this.devices, (d) => this.enroll(d));
    await this.each("connecting", this.devices.filter((d) => d.device), (d) => this.connect(d));
    this.stats.connected = this.connectedCount();
  }

  collectorConnected(): boolean {
    return this.collector?.connected ?? false;
  }

  /** Set by `interrupt()` (Ctrl-C): waits end early and no new device is enrolled, so the run winds down and cleans up. */
  interrupted = false;
  private readonly wakers = new Set<() => void>();

  interrupt(): void {
    this.interrupted = true;
    for (const wake of this.wakers) wake();
    this.wakers.clear();
  }

  /** Waits `ms`, or less if the run is interrupted. */
  hold(ms: number): Promise<void> {
    if (this.interrupted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakers.add(done);
    });
  }

  /** Enrolled devices that are connected right now. */
  connectedCount(): number {
    return this.devices.filter((d) => d.connected).length;
  }

  /** Every device publishes `rate` messages a second (QoS 1) until stopTelemetry; starts are spread over the first period. */
  startTelemetry(rate: number, devices: SimulatedDevice[] = this.devices): void {
    const period = 1000 / rate;
    for (const d of devices) {
      if (!d.device) continue;
      const start = setTimeout(() => {
        this.publishOne(d);
        const timer = setInterval(() => this.publishOne(d), period);
        this.telemetryTimers.push(timer);
      }, Math.random() * period);
      this.telemetryTimers.push(start);
    }
  }

  stopTelemetry(): void {
    for (const timer of this.telemetryTimers) clearTimeout(timer);
    this.telemetryTimers = [];
  }

  /** One telemetry message from one device; a device without a live connection (or stopped) skips its turn. */
  private publishOne(d: SimulatedDevice): void {
    if (!d.device || !d.connected || d.stoppedCode) return;
    const seq = d.seq++;
    const payload = JSON.stringify({ d: d.index, n: seq, t: Date.now() });
    this.inFlight += 1;
    d.device
      .publish(this.telemetryTopic(d.id), payload, { qos: 1 })
      .then(
        () => {
          d.ackedSeqs.add(seq);
          this.stats.sent += 1;
        },
        (error: unknown) => void this.stats.error(error),
      )
      .finally(() => (this.inFlight -= 1));
  }

  /**
   * Waits until the collector has every acknowledged message, or `maxMs` passed (messages still in
   * flight when telemetry stopped need a moment). Returns how many acknowledged messages never arrived.
   */
  async drain(maxMs = 5_000): Promise<number> {
    const until = Date.now() + maxMs;
    // First every publish must have its answer (PUBACK or error), then every acknowledged message its delivery.
    while (Date.now() < until && (this.inFlight > 0 || this.missing() > 0)) await sleep(50);
    return this.missing();
  }

  /** Acknowledged messages the collector has not received. */
  missing(): number {
    let missing = 0;
    for (const d of this.devices) for (const seq of d.ackedSeqs) if (!d.receivedSeqs.has(seq)) missing += 1;
    return missing;
  }

  /** A payload the collector would recognise as forged if a broker delivered it. */
  forgery(): string {
    const marker = randomBytes(8).toString("hex");
    this.forgeryMarkers.add(marker);
    return JSON.stringify({ forged: marker });
  }

  /** Waits until `ready` holds, checking every 50 ms, for at most `maxMs`; returns whether it held. */
  async waitFor(ready: () => boolean, maxMs: number): Promise<boolean> {
    const until = Date.now() + maxMs;
    while (!ready()) {
      if (Date.now() >= until || this.interrupted) return false;
      await sleep(50);
    }
    return true;
  }

  /** Resolves with the time of the device's next connection event in one of these states (or null after maxMs). */
  nextEvent(d: SimulatedDevice, state: ConnectionEvent["state"] | ConnectionEvent["state"][], maxMs: number): Promise<{ at: number; event: ConnectionEvent } | null> {
    const states: ConnectionEvent["state"][] = Array.isArray(state) ? state : [state];
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        d.listeners.delete(listener);
        resolve(null);
      }, maxMs);
      const listener = (event: ConnectionEvent) => {
        if (!states.includes(event.state)) return;
        clearTimeout(timer);
        d.listeners.delete(listener);
        resolve({ at: Date.now(), event });
      };
      d.listeners.add(listener);
    });
  }

  /** Closes every device; with `decommission`, marks every device of the run decommissioned and deletes the run's role. */
  async stop(decommission: boolean): Promise<void> {
    this.stopTelemetry();
    const all = [...this.devices, ...(this.collector ? [this.collector] : [])];
    await Promise.allSettled(
      all.map(async (d) => {
        d.unwatch();
        await d.device?.close();
      }),
    );
    if (!decommission) return;
    await this.each("decommissioning", all, async (d) => {
      try {
        await this.options.api.setStatus(d.id, "decommissioned", `moat sim run ${this.runId} --cleanup`);
      } catch (error) {
        // A device whose creation failed does not exist; nothing to clean up.
        if ((error as { code?: string }).code !== "DEVICE_NOT_FOUND") throw error;
      }
    });
    if (this.roleCreated) await this.options.api.deleteRole(this.collectorRole);
  }

  /** Closes a device's connection (as if it lost power); `reconnect` brings it back with the same folder. */
  async disconnect(d: SimulatedDevice): Promise<void> {
    d.unwatch();
    d.connected = false;
    await d.device?.close();
  }

  /** Boots the device again from its folder and connects it. */
  async reconnect(d: SimulatedDevice): Promise<void> {
    d.device = await this.options.factory.open({ dir: join(this.options.workDir, d.id) });
    await this.connect(d);
  }

  private blank(id: string, index: number): SimulatedDevice {
    return { id, index, device: null, connected: false, stoppedCode: null, seq: 0, lastReceivedAt: 0, receivedSeqs: new Set(), ackedSeqs: new Set(), listeners: new Set(), unwatch: () => undefined };
  }

  private async enroll(d: SimulatedDevice): Promise<void> {
    try {
      // The collector stays out of the fleet's group: campaigns to the group are for the simulated devices.
      await this.options.api.createDevice(d.id, d.index === 0 ? null : this.group);
      const token = await this.options.api.enrollmentToken(d.id);
      d.device = await this.options.factory.enroll({ server: this.options.server, ca: this.options.ca, deviceId: d.id, token, dir: join(this.options.workDir, d.id) });
      if (d.index > 0) this.stats.enrolled += 1;
    } catch (error) {
      this.stats.error(error);
      if (d.index === 0) throw error;
    }
  }

  private async connect(d: SimulatedDevice): Promise<void> {
    if (!d.device) return;
    d.unwatch();
    d.unwatch = this.options.factory.watch(d.device, (event) => {
      if (event.state === "connected") d.connected = true;
      else d.connected = false;
      if (event.state === "stopped") d.stoppedCode = event.code;
      for (const listener of [...d.listeners]) listener(event);
    });
    try {
      await d.device.connect(this.options.mqttUrl ? { mqttUrl: this.options.mqttUrl } : {});
      d.connected = true;
    } catch (error) {
      this.stats.error(error);
      if (d.index === 0) throw error;
    }
  }

  private collect(topic: string, payload: Buffer): void {
    for (const listener of this.collected) listener(topic, payload);
    const text = payload.toString("utf8");
    for (const marker of this.forgeryMarkers)
      if (text.includes(marker)) {
        this.forgedDelivered += 1;
        return;
      }
    const message = parseTelemetry(payload);
    if (!message) return;
    const d = this.devices[message.d - 1];
    if (!d || topic !== this.telemetryTopic(d.id)) return;
    const now = Date.now();
    d.lastReceivedAt = now;
    if (d.receivedSeqs.has(message.n)) return;
    d.receivedSeqs.add(message.n);
    this.stats.received += 1;
    this.stats.latency.record(now - message.t);
  }

  /** Runs `work` over `items` with at most `concurrency` at once, reporting progress. */
  private async each(phase: string, items: SimulatedDevice[], work: (d: SimulatedDevice) => Promise<void>): Promise<void> {
    const concurrency = this.options.concurrency ?? 8;
    let next = 0;
    let done = 0;
    this.options.progress?.(phase, 0, items.length);
    const worker = async () => {
      // Interrupted: what is enrolled is still cleaned up, but nothing new starts (cleanup itself always runs).
      while (next < items.length && !(this.interrupted && phase !== "decommissioning")) {
        const item = items[next++]!;
        await work(item);
        done += 1;
        this.options.progress?.(phase, done, items.length);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
