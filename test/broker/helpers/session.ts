/**
 * Sessions without sockets, for the tests beside the broker's decision pieces (authorizer, enforcer).
 * The stand-in client carries what those pieces touch on an aedes client: its subscriptions, its
 * unsubscribe and its close. The broker-level tests in test/broker/ run the same pieces under real aedes.
 */
import type { Client } from "aedes";
import { subjectOf } from "../../../src/broker/authenticator.js";
import type { DeviceRecord } from "../../../src/broker/ports.js";
import { TokenBucket } from "../../../src/broker/rate-limiter.js";
import type { AuthMethod, Session, SessionRegistry } from "../../../src/broker/session.js";

export interface TestClient {
  readonly id: string;
  /** True once the broker (or the client) ended the connection. */
  closed: boolean;
  clean: boolean;
  subscriptions: Record<string, { qos: number }>;
  close(): void;
  unsubscribe(packet: { unsubscriptions: string[] }, done: () => void): void;
}

export function testClient(id: string, subscriptions: readonly string[] = []): TestClient & Client {
  const client: TestClient = {
    id,
    closed: false,
    clean: true,
    subscriptions: Object.fromEntries(subscriptions.map((topic) => [topic, { qos: 0 }])),
    close() {
      client.closed = true;
    },
    unsubscribe(packet, done) {
      for (const topic of packet.unsubscriptions) delete client.subscriptions[topic];
      done();
    },
  };
  return client as TestClient & Client;
}

export interface TestSessionOptions {
  method?: AuthMethod;
  certSerial?: string | null;
  credentialId?: string | null;
  /** Publishes per second (and burst) before the rate limit drops (default: plenty). */
  messagesPerSecond?: number;
  /** The rate limiter's clock (a fixed one makes the bucket refill never). */
  now?: () => number;
  subscriptions?: readonly string[];
}

/**
 * A session for `device` as the authenticator would open it, attached and registered in `sessions`
 * (as aedes' `client` event does), with closing wired the way the broker closes sessions.
 */
export function openTestSession(sessions: SessionRegistry, device: DeviceRecord, options: TestSessionOptions = {}): Session & { client: TestClient & Client } {
  const client = testClient(device.id, options.subscriptions);
  const rate = options.messagesPerSecond ?? 1_000;
  const session = {
    id: `session-${device.id}`,
    client,
    deviceId: device.id,
    method: options.method ?? (options.certSerial ? "mtls" : "jwt-key"),
    certSerial: options.certSerial ?? null,
    credentialId: options.credentialId ?? null,
    address: "127.0.0.1",
    listener: "mqtts",
    connectedAt: Date.now(),
    subject: subjectOf(device, options.certSerial ? device.id : null),
    status: device.status,
    denials: 0,
    bucket: new TokenBucket(rate, rate, options.now),
    reportedReceiveDenials: new Set<string>(),
    closeCause: null,
    deadline: Number.POSITIVE_INFINITY,
    deadlineTimer: null,
    registered: false,
  } satisfies Session;
  sessions.attach(session);
  sessions.register(session);
  return session;
}

/** Closes a session the way the broker does: records the cause, then ends the connection. */
export function closeTestSession(session: Session, cause: string): void {
  if (session.closeCause !== null) return;
  session.closeCause = cause;
  session.client.close();
}
