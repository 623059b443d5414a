/**
 * Authorization of every publish, subscribe and delivery through the access-control engine, plus the
 * payload and rate limits. Hooks are aedes' own: `authorizePublish`, `authorizeSubscribe` and the
 * synchronous `authorizeForward`, which also guards retained messages and other clients' publishes.
 */
import type { AedesPublishPacket, Client, PublishPacket, Subscription } from "aedes";
import type { BrokerMetrics } from "./metrics.js";
import type { BrokerAction, BrokerDecision, BrokerEvent, Decider, DeviceDirectory, TrafficObserver } from "./ports.js";
import { CONNECTABLE_STATUSES, subjectOf } from "./authenticator.js";
import type { Session, SessionRegistry } from "./session.js";
import { isRestoringSession, SESSION_MARKER_TOPIC } from "./session-marker.js";
import type { BrokerSettings } from "./settings.js";

/** Upper bound on distinct topics whose delivery denial is reported per session. */
const MAX_REPORTED_RECEIVE_DENIALS = 64;

export interface AuthorizerDeps {
  sessions: SessionRegistry;
  decider: Decider;
  directory: DeviceDirectory;
  settings: Readonly<BrokerSettings>;
  metrics: BrokerMetrics;
  emit: (event: BrokerEvent) => void;
  /** Records activity for the batched last-seen writer. */
  touch: (session: Session) => void;
  /** Counts deliveries per device (detection's metrics). */
  traffic?: TrafficObserver;
}

function ruleOf(decision: BrokerDecision): Record<string, unknown> {
  const rule = decision.rule;
  return rule ? { role: rule.role, rule: `${rule.effect ?? ""} ${rule.action ?? ""}:${rule.resource ?? ""}`.trim() } : { decision: decision.reason ?? "no-matching-rule" };
}

export class Authorizer {
  /**
   * Publishes that are acknowledged but not forwarded. MQTT 3.1.1 gives a server that refuses a
   * PUBLISH two choices: acknowledge it normally or close the connection [MQTT-3.3.5-2]. Below the
   * denial limit we acknowledge and drop; the broker's `publish` consults this set.
   */
  readonly dropped = new WeakSet<object>();

  constructor(private readonly deps: AuthorizerDeps) {}

  private decide(session: Session, action: BrokerAction, topic: string): BrokerDecision {
    return this.deps.decider.decide(session.subject, action, topic);
  }

  private deny(session: Session, action: BrokerAction, topic: string, reason: string, extra: Record<string, unknown> = {}): void {
    this.deps.metrics.denials.inc({ action, reason });
    this.deps.emit({
      type: "acl.denied",
      severity: "medium",
      actor: `device:${session.deviceId}`,
      subject: session.deviceId,
      data: { action, topic: topic.slice(0, 256), reason, ...extra },
    });
  }

  private limitExceeded(session: Session, limit: string, data: Record<string, unknown>): void {
    this.deps.metrics.denials.inc({ action: "publish", reason: limit });
    this.deps.emit({ type: "broker.limit_exceeded", severity: "medium", actor: `device:${session.deviceId}`, subject: session.deviceId, data: { limit, ...data } });
  }

  /** aedes `authorizePublish`: client publishes and wills (client null for a will left by a dead node). */
  authorizePublish = (client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void): void => {
    if (client === null) {
      this.authorizeOrphanWill(packet).then(callback, callback);
      return;
    }
    const session = this.deps.sessions.of(client);
    if (!session) return callback(new Error("no session"));
    // A session closed by enforcement publishes nothing more, not even its will.
    if (session.closeCause !== null) return callback(new Error(`session closed: ${session.closeCause}`));
    const topic = packet.topic;
    const isWill = client.closed;
    // A string holding U+0000 is malformed and the connection must be closed [MQTT-1.5.3-2].
    if (topic.includes("\u0000")) {
      this.deny(session, "publish", topic, "malformed_topic");
      return this.refuseAndClose(session, isWill, "malformed_topic", callback);
    }
    if (topic.startsWith("$")) {
      // Nobody publishes to $SYS or other reserved topics [MQTT-4.7.2-1]; aedes uses them internally.
      this.deny(session, "publish", topic, "reserved_topic");
      return this.refuseAndClose(session, isWill, "reserved_topic", callback);
    }
    const size = packet.payload?.length ?? 0;
    if (size > this.deps.settings.maxPayloadBytes) {
      this.limitExceeded(session, "payload_size", { size, max: this.deps.settings.maxPayloadBytes });
      return this.refuseAndClose(session, isWill, "payload_too_large", callback);
    }
    if (!isWill && !session.bucket.take()) {
      this.deps.metrics.denials.inc({ action: "publish", reason: "rate_limited" });
      if (session.bucket.consecutiveDrops >= this.deps.settings.rateDropsBeforeDisconnect) {
        this.limitExceeded(session, "message_rate", { perSecond: this.deps.settings.messagesPerSecond, dropped: session.bucket.consecutiveDrops });
        return this.refuseAndClose(session, isWill, "message_rate", callback);
      }
      this.dropped.add(packet);
      return callback(null);
    }
    const decision = this.decide(session, "publish", topic);
    if (!decision.allow) {
      session.denials += 1;
      this.deny(session, "publish", topic, "policy", { ...ruleOf(decision), will: isWill, denials: session.denials });
      if (isWill || session.denials >= this.deps.settings.maxPublishDenials) return this.refuseAndClose(session, isWill, "publish_denied", callback);
      this.dropped.add(packet);
      return callback(null);
    }
    this.deps.metrics.messagesIn.inc();
    this.deps.touch(session);
    callback(null);
  };

  /**
   * Refuses a publish with an error, which makes aedes close the connection; the session records why,
   * so the disconnect event names the cause instead of "client". A will is refused without a cause:
   * its connection had already ended.
   */
  private refuseAndClose(session: Session, isWill: boolean, cause: string, callback: (error?: Error | null) => void): void {
    if (!isWill && session.closeCause === null) {
      session.closeCause = cause;
      this.deps.metrics.sessionsClosed.inc({ cause });
    }
    callback(new Error(cause));
  }

  /** A will whose client is gone (its node died): authorize it against the device's current record. */
  private async authorizeOrphanWill(packet: PublishPacket): Promise<Error | null> {
    const clientId = (packet as PublishPacket & { clientId?: string }).clientId;
    if (!clientId || packet.topic.startsWith("$")) return new Error("will without a client");
    const device = await this.deps.directory.get(clientId);
    if (!device || !CONNECTABLE_STATUSES.has(device.status)) return new Error("will of an inactive device");
    return this.deps.decider.decide(subjectOf(device, null), "publish", packet.topic).allow ? null : new Error("will denied");
  }

  /** aedes `authorizeSubscribe`: a denial answers SUBACK 0x80 for that filter and keeps the connection. */
  authorizeSubscribe = (client: Client, sub: Subscription, callback: (error: Error | null, subscription?: Subscription | null) => void): void => {
    const session = this.deps.sessions.of(client);
    if (!session || session.closeCause !== null) return callback(null, null);
    // The persistent-session marker is restored with the session's subscriptions, before CONNACK; it is never delivered to.
    if (sub.topic === SESSION_MARKER_TOPIC && isRestoringSession(client)) return callback(null, null);
    if (sub.topic.includes("\u0000")) {
      this.deny(session, "subscribe", sub.topic, "malformed_topic");
      if (session.closeCause === null) {
        session.closeCause = "malformed_topic";
        this.deps.metrics.sessionsClosed.inc({ cause: "malformed_topic" });
      }
      callback(null, null);
      client.close();
      return;
    }
    if (sub.topic.startsWith("$")) {
      this.deny(session, "subscribe", sub.topic, "reserved_topic");
      return callback(null, null);
    }
    const decision = this.decide(session, "subscribe", sub.topic);
    if (!decision.allow) {
      this.deny(session, "subscribe", sub.topic, "policy", ruleOf(decision));
      return callback(null, null);
    }
    callback(null, sub);
  };

  /** aedes `authorizeForward` (synchronous): every delivery, retained messages included. */
  authorizeForward = (client: Client, packet: AedesPublishPacket): AedesPublishPacket | null => {
    const session = this.deps.sessions.of(client);
    if (!session || session.closeCause !== null) return null;
    const decision = this.decide(session, "receive", packet.topic);
    if (!decision.allow) {
      this.deps.metrics.denials.inc({ action: "receive", reason: "policy" });
      const reported = session.reportedReceiveDenials;
      if (!reported.has(packet.topic) && reported.size < MAX_REPORTED_RECEIVE_DENIALS) {
        reported.add(packet.topic);
        this.deps.emit({
          type: "acl.denied",
          severity: "low",
          actor: `device:${session.deviceId}`,
          subject: session.deviceId,
          data: { action: "receive", topic: packet.topic.slice(0, 256), reason: "policy", retained: packet.retain === true, ...ruleOf(decision) },
        });
      }
      return null;
    }
    this.deps.metrics.messagesOut.inc();
    this.deps.traffic?.delivered(session.deviceId, packet.payload?.length ?? 0);
    return packet;
  };

  /** Removes the session's subscriptions the policy no longer allows; returns the removed filters. */
  pruneSubscriptions(session: Session): string[] {
    const client = session.client as Client & { subscriptions?: Record<string, unknown> };
    const removed: string[] = [];
    for (const topic of Object.keys(client.subscriptions ?? {})) {
      if (!this.decide(session, "subscribe", topic).allow) removed.push(topic);
    }
    if (removed.length > 0) {
      // Without a messageId aedes sends no UNSUBACK; the stored subscriptions of a persistent session
      // are removed too, so a reconnect does not bring them back.
      client.unsubscribe({ unsubscriptions: removed } as never, () => undefined);
      const broker = (client as Client & { broker?: { persistence?: { removeSubscriptions?: (c: Client, t: string[]) => Promise<unknown> } } }).broker;
      if (!client.clean) broker?.persistence?.removeSubscriptions?.(client, removed).catch(() => undefined);
      for (const topic of removed) this.deny(session, "subscribe", topic, "policy_changed", { removed: true });
    }
    return removed;
  }
}
