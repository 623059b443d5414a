/**
 * Runs a real broker node on a random loopback port with in-process implementations of its ports:
 * the in-memory device directory, a change feed fed by the test, the real policy engine, and an
 * event log the test can wait on.
 */
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { BUILTIN_ROLES, compilePolicy, type Assignment, type PolicyEngine, type RoleDefinition } from "../../../src/policy/index.js";
import { InMemoryDeviceDirectory, startBroker, type BrokerEvent, type BrokerSettings, type Decider, type MoatBroker } from "../../../src/broker/index.js";
import { isDeviceId } from "../../../src/identity/index.js";
import type { Change, ChangeFeed, ChangeInput } from "../../../src/ports.js";
import type { TestPki } from "./test-pki.js";
import type { Counter } from "prom-client";

/** An in-process change feed: the test appends, subscribers get each change once, in order. */
export class TestChangeFeed implements ChangeFeed {
  private seq = 0;
  private readonly listeners = new Set<(change: Change) => void>();

  subscribe(listener: (change: Change) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async latestSeq(): Promise<number> {
    return this.seq;
  }

  push(input: ChangeInput): Change {
    const change = { ...input, seq: ++this.seq, createdAt: new Date().toISOString() } as Change;
    for (const listener of this.listeners) listener(change);
    return change;
  }
}

/** Collects events; `waitFor` resolves when one matches (or rejects after a generous timeout). */
export class EventLog {
  readonly events: BrokerEvent[] = [];
  private readonly waiters: { match: (e: BrokerEvent) => boolean; resolve: (e: BrokerEvent) => void }[] = [];

  async emit(event: BrokerEvent): Promise<void> {
    this.events.push(event);
    for (const waiter of [...this.waiters]) {
      if (waiter.match(event)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        waiter.resolve(event);
      }
    }
  }

  of(type: string): BrokerEvent[] {
    return this.events.filter((e) => e.type === type);
  }

  waitFor(match: (e: BrokerEvent) => boolean, timeoutMs = 10_000): Promise<BrokerEvent> {
    const found = this.events.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("expected event did not arrive")), timeoutMs);
      this.waiters.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
    });
  }
}

/** The real policy engine behind the broker's Decider port, recompiled when the test changes roles. */
export class PolicyHolder implements Decider {
  private engine: PolicyEngine;
  constructor(
    private roles: RoleDefinition[] = [...BUILTIN_ROLES],
    private assignments: Assignment[] = [],
  ) {
    this.engine = compilePolicy({ roles: this.roles, assignments: this.assignments });
  }

  decide(subject: Parameters<Decider["decide"]>[0], action: Parameters<Decider["decide"]>[1], topic: string) {
    return this.engine.decide(subject, action, topic);
  }

  assign(role: string, kind: Assignment["kind"], target: string): void {
    this.assignments.push({ role, kind, target });
    this.engine = compilePolicy({ roles: this.roles, assignments: this.assignments });
  }

  unassign(role: string, kind: Assignment["kind"], target: string): void {
    this.assignments = this.assignments.filter((a) => !(a.role === role && a.kind === kind && a.target === target));
    this.engine = compilePolicy({ roles: this.roles, assignments: this.assignments });
  }

  addRole(role: RoleDefinition): void {
    this.roles.push(role);
    this.engine = compilePolicy({ roles: this.roles, assignments: this.assignments });
  }
}

export interface TestBroker {
  broker: MoatBroker;
  port: number;
  directory: InMemoryDeviceDirectory;
  feed: TestChangeFeed;
  events: EventLog;
  policy: PolicyHolder;
  close(): Promise<void>;
}

export async function startTestBroker(pki: TestPki, settings: Partial<BrokerSettings> = {}, shared?: Partial<Pick<TestBroker, "directory" | "feed" | "policy">>): Promise<TestBroker> {
  const directory = shared?.directory ?? new InMemoryDeviceDirectory(isDeviceId);
  const feed = shared?.feed ?? new TestChangeFeed();
  const policy = shared?.policy ?? new PolicyHolder();
  const events = new EventLog();
  const broker = await startBroker(
    {
      directory,
      revocationSource: directory,
      decider: policy,
      events,
      feed,
      tls: {
        load: async () => ({ certPem: pki.server.certPem, keyPem: pki.server.keyPem, caPems: [pki.chainPem], issuingCaPems: [pki.issuing.certPem] }),
      },
    },
    { host: "127.0.0.1", mqttPort: 0, ...settings },
  );
  return { broker, port: broker.ports.tls!, directory, feed, events, policy, close: () => broker.close() };
}

export type ConnectResult = { ok: true; client: MqttClient } | { ok: false; returnCode: number | null; message: string };

/** Connects with MQTT.js over TLS, verifying the server's certificate and host name. */
export async function connectMqtt(port: number, pki: TestPki, options: IClientOptions & { cert?: string; key?: string; /** The local address to connect from (another 127.0.0.x stands for another host). */ localAddress?: string }, protocol: "mqtts" | "wss" | "mqtt" = "mqtts"): Promise<ConnectResult> {
  const client = mqtt.connect(`${protocol}://127.0.0.1:${port}`, {
    ca: pki.chainPem,
    rejectUnauthorized: true,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    protocolVersion: 4,
    ...options,
  });
  return new Promise((resolve) => {
    const done = (result: ConnectResult) => {
      client.removeAllListeners("connect");
      client.removeAllListeners("error");
      client.on("error", () => undefined);
      resolve(result);
    };
    client.once("connect", () => done({ ok: true, client }));
    client.once("error", (err: Error & { code?: number | string }) => {
      client.end(true);
      done({ ok: false, returnCode: typeof err.code === "number" ? err.code : null, message: err.message });
    });
    client.once("close", () => {
      if (!client.connected) done({ ok: false, returnCode: null, message: "closed before CONNACK" });
    });
  });
}

/** Resolves when the client's connection closes. */
export function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (client.disconnected || !client.connected) return resolve();
    client.once("close", () => resolve());
  });
}

/** Collects messages a client receives. */
export function inbox(client: MqttClient): { messages: { topic: string; payload: string; retain: boolean }[]; next(timeoutMs?: number): Promise<{ topic: string; payload: string }> } {
  const messages: { topic: string; payload: string; retain: boolean }[] = [];
  const waiters: ((m: { topic: string; payload: string }) => void)[] = [];
  client.on("message", (topic, payload, packet) => {
    const message = { topic, payload: payload.toString(), retain: packet.retain };
    messages.push(message);
    waiters.shift()?.(message);
  });
  return {
    messages,
    next: (timeoutMs = 5000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no message")), timeoutMs);
        waiters.push((m) => (clearTimeout(timer), resolve(m)));
      }),
  };
}

/** Waits a little for things that must NOT happen (a message that must not arrive). */
export const settle = (ms = 300) => new Promise((r) => setTimeout(r, ms));

/** Subscribes and returns the granted QoS per filter from the SUBACK (128 = refused), without MQTT.js turning 128 into an error. */
export function subscribeGranted(client: MqttClient, topics: string[], qos: 0 | 1 = 0): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no SUBACK")), 5000);
    const onPacket = (packet: { cmd: string; granted?: (number | { qos: number })[] }) => {
      if (packet.cmd !== "suback") return;
      client.off("packetreceive", onPacket as never);
      clearTimeout(timer);
      resolve((packet.granted ?? []).map((g) => (typeof g === "number" ? g : g.qos)));
    };
    client.on("packetreceive", onPacket as never);
    client.subscribe(topics, { qos }, () => undefined);
  });
}

/** The current value of a counter's sample with these labels (0 when it was never counted). */
export async function counterValue<L extends string>(counter: Counter<L>, labels: Partial<Record<L, string>>): Promise<number> {
  const { values } = await counter.get();
  const sample = values.find((v) => Object.entries(labels).every(([k, want]) => v.labels[k as L] === want));
  return sample?.value ?? 0;
}
