/**
 * One broker node: aedes (MQTT 3.1.1) behind Moat's listeners, authentication, authorization, live
 * enforcement from the change feed, optional Redis scale-out, metrics and events.
 */
import { randomUUID } from "node:crypto";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { IncomingMessage } from "node:http";
import { Aedes, type AedesOptions, type Client, type ConnectPacket, type PublishPacket } from "aedes";
import { MoatError } from "../errors.js";
import { topicMatches } from "../policy/index.js";
import type { Change, ChangeFeed } from "../ports.js";
import { Authenticator, type ConnectContext } from "./authenticator.js";
import { Authorizer } from "./authorizer.js";
import { issuingCasOf } from "./cert-auth.js";
import { guardPacketSize } from "./frame-guard.js";
import type { ClusterParts } from "./cluster.js";
import { ChangePipeline } from "./change-pipeline.js";
import { Enforcer } from "./enforcer.js";
import { LastSeenBatcher } from "./last-seen.js";
import { markPersistentSession } from "./session-marker.js";
import { listenPlainLoopback, listenTls, listenWss, validateTlsMaterial, type BoundListener, type ListenerName } from "./listeners.js";
import { createBrokerMetrics, type BrokerMetrics, type MetricsRegistry } from "./metrics.js";
import type { BrokerEvent, BrokerEventSink, BrokerTlsMaterial, Decider, DeviceDirectory, LastSeenWriter, RevocationSource, TlsMaterialSource, TrafficObserver } from "./ports.js";
import { RevocationView } from "./revocation-view.js";
import { SessionRegistry, type Session } from "./session.js";
import { resolveBrokerSettings, type BrokerSettings } from "./settings.js";

/** The operator log the broker writes to (pino's method shape); events never go here. */
export interface BrokerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

const SILENT: BrokerLogger = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

export interface BrokerDeps {
  directory: DeviceDirectory;
  revocationSource: RevocationSource;
  decider: Decider;
  tls: TlsMaterialSource;
  events: BrokerEventSink;
  /** The change feed; without it nothing is enforced live (tests of the listener only). */
  feed?: ChangeFeed;
  lastSeen?: LastSeenWriter;
  logger?: BrokerLogger;
  /** Counts each device's publishes and deliveries (detection's metrics); none when absent. */
  traffic?: TrafficObserver;
  /** Register the broker's metrics in this registry (the API's /metrics); a private one otherwise. */
  metricsRegistry?: MetricsRegistry;
  now?: () => number;
}

/** A publish by an authenticated device that passed authorization, as {@link MoatBroker.onDeviceMessage} hands it over. */
export interface DeviceMessage {
  /** The device the session authenticated as (never taken from the topic). */
  deviceId: string;
  topic: string;
  payload: Buffer;
}

/** Delivery options of a server-side publish. */
export interface ServerPublishOptions {
  qos?: 0 | 1;
  retain?: boolean;
}

export interface MoatBroker {
  readonly nodeId: string;
  readonly settings: Readonly<BrokerSettings>;
  /** Bound ports by listener (useful with port 0). */
  readonly ports: Readonly<Partial<Record<ListenerName, number>>>;
  readonly metrics: BrokerMetrics;
  sessionCount(): number;
  /** Applies a change pushed in-process right after its commit (the feed delivers it too; applied once). */
  applyChange(change: Change): Promise<void>;
  /**
   * Publishes as the server, not as a client: no publish authorization applies, but every delivery
   * still passes the receiver's `receive` authorization (`authorizeForward`). With Redis, the message
   * reaches subscribers on every node. Throws `BROKER_TOPIC_INVALID` for an unpublishable topic.
   */
  publish(topic: string, payload: Buffer, options?: ServerPublishOptions): Promise<void>;
  /**
   * Calls `listener` for every publish (wills included) of a device connected to this node, once
   * authorization accepted it; denied or dropped publishes never reach it. Returns the unsubscriber.
   */
  onDeviceMessage(listener: (message: DeviceMessage) => void): () => void;
  /**
   * Calls `listener(deviceId)` when a device connected to this node is granted a subscription whose
   * filter matches `topicOf(deviceId)`: from then on a message published there reaches it (a device
   * with a clean session subscribes again after every reconnect). Returns the unsubscriber.
   */
  onDeviceSubscribedTo(topicOf: (deviceId: string) => string, listener: (deviceId: string) => void): () => void;
  /**
   * Bans an address range (CIDR) on this node's listeners until `expiresAtMs` (null: until lifted). Like
   * the automatic bans, it refuses guessing only: a connection that can carry a valid credential (a
   * verified client certificate, a JWT-shaped password) is still authenticated in full.
   */
  banRange(range: string, expiresAtMs: number | null): void;
  unbanRange(range: string): void;
  bannedRanges(): string[];
  close(): Promise<void>;
}

interface ConnectionInfo {
  listener: ListenerName;
  tls: TLSSocket | null;
  address: string | null;
}

/** Error carrying the CONNACK return code aedes sends [MQTT-3.2.2-5]. */
function connackError(message: string, returnCode: number): Error & { returnCode: number } {
  return Object.assign(new Error(message), { returnCode });
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** A server-side publish topic: no wildcards [MQTT-3.3.2-2], not reserved (`$`), at most 64 KiB [MQTT-1.5.3]. */
function assertPublishableTopic(topic: string): void {
  if (topic.length === 0 || Buffer.byteLength(topic) > 65_535 || /[+#\u0000]/.test(topic) || topic.startsWith("$"))
    throw new MoatError("BROKER_TOPIC_INVALID", `the broker cannot publish to topic ${JSON.stringify(topic.slice(0, 256))}`);
}

/** Starts a broker node: loads the revocation view, opens the listeners and follows the change feed. */
export async function startBroker(deps: BrokerDeps, partialSettings: Partial<BrokerSettings> = {}): Promise<MoatBroker> {
  const settings = resolveBrokerSettings(partialSettings);
  const logger = deps.logger ?? SILENT;
  const now = deps.now ?? Date.now;
  const nodeId = randomUUID();
  const sessions = new SessionRegistry();
  const metrics = createBrokerMetrics(() => sessions.size, deps.metricsRegistry);
  const revocations = new RevocationView();
  const connections = new WeakMap<object, ConnectionInfo>();
  const connectPackets = new WeakMap<Client, { clientId: string; will: ConnectContext["will"] }>();
  /** New session → the session of the same client id it replaces, and the reverse (client-id takeovers). */
  const takeovers = new WeakMap<Session, Session>();
  const takenOver = new WeakMap<Session, Session>();

  // A throwing observer must not break the message path.
  const traffic: TrafficObserver | undefined = deps.traffic && {
    published: (deviceId, bytes) => {
      try {
        deps.traffic!.published(deviceId, bytes);
      } catch (err) {
        logger.error({ err }, "broker: the traffic observer failed");
      }
    },
    delivered: (deviceId, bytes) => {
      try {
        deps.traffic!.delivered(deviceId, bytes);
      } catch (err) {
        logger.error({ err }, "broker: the traffic observer failed");
      }
    },
  };
  const emit = (event: BrokerEvent): void => {
    deps.events.emit(event).catch((err: unknown) => logger.error({ err, type: event.type }, "broker: could not record a security event"));
  };

  let material: BrokerTlsMaterial = validateTlsMaterial(await deps.tls.load());
  let issuingCas = issuingCasOf(material.issuingCaPems);
  const listeners: BoundListener[] = [];

  const lastSeen = new LastSeenBatcher(deps.lastSeen ?? null, settings.lastSeenFlushMs, (err) => logger.error({ err }, "broker: last-seen write failed"));
  const authenticator = new Authenticator({ directory: deps.directory, revocations, decider: deps.decider, settings, issuingCas: () => issuingCas, now });
  const authorizer = new Authorizer({
    sessions,
    decider: deps.decider,
    directory: deps.directory,
    settings,
    metrics,
    emit,
    touch: (session) => lastSeen.touch(session.deviceId, session.address),
    ...(deps.traffic ? { traffic: deps.traffic } : {}),
  });

  const closeSession = (session: Session, cause: string): void => {
    if (session.closeCause !== null) return;
    session.closeCause = cause;
    if (session.deadlineTimer) clearTimeout(session.deadlineTimer);
    metrics.sessionsClosed.inc({ cause });
    session.client.close();
  };

  const armDeadline = (session: Session): void => {
    if (session.deadlineTimer) clearTimeout(session.deadlineTimer);
    session.deadlineTimer = null;
    if (!Number.isFinite(session.deadline)) return;
    const delay = session.deadline - now();
    if (delay <= 0) return closeSession(session, "credential_expired");
    session.deadlineTimer = setTimeout(() => armDeadline(session), Math.min(delay, MAX_TIMER_MS));
    session.deadlineTimer.unref();
  };

  const reloadTls = async (): Promise<void> => {
    // Unusable new material throws here and the listeners keep the old one (the error is logged).
    material = validateTlsMaterial(await deps.tls.load());
    issuingCas = issuingCasOf(material.issuingCaPems);
    for (const listener of listeners) listener.setSecureContext?.(material);
    logger.info({}, "broker: TLS material reloaded");
  };

  const enforcer = new Enforcer({
    sessions,
    directory: deps.directory,
    revocations,
    authorizer,
    metrics,
    close: closeSession,
    armDeadline,
    reloadTls,
    onError: (err, change) => logger.error({ err, kind: change.kind, seq: change.seq }, "broker: could not apply a change"),
    now,
  });
  // Each row: the decider first (policy), then the live sessions, one row at a time.
  const pipeline = new ChangePipeline(deps.decider, enforcer, (err, change) =>
    logger.error({ err, kind: change.kind, seq: change.seq }, "broker: the decider could not take in a change; sessions re-checked against the policy as it stands"),
  );

  // Feed first, then the revocation snapshot: a revocation committed in between is seen by both, never by neither.
  const pendingChanges: Change[] = [];
  let started = false;
  const onChange = (change: Change, fromCluster: boolean): Promise<void> => {
    if (!started) {
      pendingChanges.push(change);
      return Promise.resolve();
    }
    if (!pipeline.admit(change)) return Promise.resolve();
    if (!fromCluster && cluster) cluster.channel.publish(change);
    return pipeline.apply(change);
  };
  const unsubscribeFeed = deps.feed?.subscribe((change) => void onChange(change, false)) ?? (() => undefined);
  let cluster: ClusterParts | null = null;
  try {
    await revocations.load(deps.revocationSource);
    // The Redis clients load only when a Redis URL is configured.
    if (settings.redisUrl)
      cluster = await (await import("./cluster.js")).connectCluster(settings.redisUrl, settings.redisNamespace, nodeId, (change) => void onChange(change, true), (err) =>
        logger.error({ err: err.message }, "broker: Redis connection error"),
      );
  } catch (err) {
    unsubscribeFeed();
    throw err;
  }

  const aedesOptions: AedesOptions = {
    id: nodeId,
    // No mqemitter queue: with a concurrency cap, a backlog of messages that match no subscriber is
    // drained by synchronous recursion and can overflow the stack (a crash any client can provoke by
    // flooding while a slow subscriber holds the slots). Backpressure comes from aedes reading a
    // client's next packets only after its publishes are delivered, and drainTimeout ends slow readers.
    concurrency: 0,
    connectTimeout: settings.connectTimeoutMs,
    drainTimeout: settings.drainTimeoutMs,
    maxClientsIdLength: 128,
    ...(cluster ? { mq: cluster.mq, persistence: cluster.persistence } : {}),
    preConnect: (client: Client, packet: ConnectPacket, callback: (error: Error | null, success: boolean) => void) => {
      const will = packet.will ? { topic: packet.will.topic, payload: Buffer.from(packet.will.payload ?? []) } : null;
      connectPackets.set(client, { clientId: packet.clientId ?? "", will });
      callback(null, true);
    },
    authenticate: (client, username, password, done) => {
      const info = connections.get(client.conn);
      const packet = connectPackets.get(client);
      const ctx: ConnectContext = {
        client,
        clientId: packet?.clientId ?? "",
        username: username ?? undefined,
        password: password ?? undefined,
        will: packet?.will ?? null,
        tls: info?.tls ?? null,
        address: info?.address ?? null,
        listener: info?.listener ?? "tls",
      };
      authenticator.authenticate(ctx).then(
        (result) => {
          if (result.ok) {
            // A live session of the same client id on this node is about to be closed by aedes for this one
            // [MQTT-3.1.4-2]; both events say so (aedes emits the old one's disconnect first).
            const previous = sessions.forDevice(result.session.deviceId);
            if (previous?.registered) {
              takeovers.set(result.session, previous);
              takenOver.set(previous, result.session);
            }
            sessions.attach(result.session);
            done(null, true);
            return;
          }
          metrics.authFailures.inc({ reason: result.reason });
          // Every refusal is emitted; the sink (the audit domain's failure aggregator) keeps the log
          // bounded per source address and kind, while live listeners see each one.
          emit({
            type: "auth.failed",
            severity: result.reason === "cert_revoked" ? "high" : "medium",
            actor: result.claimedId ? `device:${result.claimedId}` : `address:${ctx.address ?? "unknown"}`,
            subject: result.claimedId ?? "",
            data: {
              protocol: "mqtt",
              listener: ctx.listener,
              reason: result.reason,
              address: ctx.address,
              clientId: ctx.clientId.slice(0, 128),
              ...(result.detail ? { detail: result.detail } : {}),
            },
          });
          if (result.banStarted) {
            emit({ type: "auth.banned", severity: "high", actor: "system", subject: result.banStarted, data: { protocol: "mqtt", seconds: settings.banSeconds } });
          }
          done(connackError(result.reason, result.returnCode) as never, false);
        },
        (err: unknown) => {
          logger.error({ err }, "broker: authentication failed unexpectedly");
          metrics.authFailures.inc({ reason: "internal_error" });
          // 3 = server unavailable: the refusal is ours, not the client's.
          done(connackError("server unavailable", 3) as never, false);
        },
      );
    },
    authorizePublish: authorizer.authorizePublish,
    authorizeSubscribe: authorizer.authorizeSubscribe,
    authorizeForward: authorizer.authorizeForward,
  };

  const aedes = await Aedes.createBroker(aedesOptions);
  const deviceMessageListeners = new Set<(message: DeviceMessage) => void>();
  const toDeviceMessageListeners = (deviceId: string, packet: PublishPacket): void => {
    if (deviceMessageListeners.size === 0) return;
    const message: DeviceMessage = { deviceId, topic: packet.topic, payload: Buffer.from(packet.payload ?? []) };
    for (const listener of deviceMessageListeners) {
      try {
        listener(message);
      } catch (err) {
        logger.error({ err, deviceId }, "broker: a device-message listener failed");
      }
    }
  };
  // Publishes dropped by authorizePublish are acknowledged but go nowhere (see Authorizer.dropped).
  // Every publish aedes forwards passes here: a client's (after authorizePublish) and the server's own.
  const publish = aedes.publish.bind(aedes) as (packet: PublishPacket, client: unknown, done?: (err?: Error) => void) => void;
  (aedes as unknown as { publish: typeof publish }).publish = (packet, client, done) => {
    const callback = typeof client === "function" ? (client as (err?: Error) => void) : done;
    if (authorizer.dropped.has(packet)) return callback?.();
    // A client's publish reaches this point only once authorized; the server's own (client null) is not a device's.
    const session = client && typeof client === "object" ? sessions.of(client as Client) : undefined;
    if (!session) return publish(packet, client, done);
    traffic?.published(session.deviceId, packet.payload?.length ?? 0);
    publish(packet, client, (err) => {
      if (!err) toDeviceMessageListeners(session.deviceId, packet);
      callback?.(err);
    });
  };

  aedes.on("client", (client) => {
    const session = sessions.of(client);
    if (!session) return client.close();
    const replaced = takeovers.get(session) ?? null;
    sessions.register(session);
    armDeadline(session);
    metrics.connectsAccepted.inc({ method: session.method });
    lastSeen.touch(session.deviceId, session.address);
    emit({
      type: "device.connected",
      severity: "info",
      actor: `device:${session.deviceId}`,
      subject: session.deviceId,
      data: {
        protocol: "mqtt",
        listener: session.listener,
        method: session.method,
        address: session.address,
        node: nodeId,
        session: session.id,
        // The client id is the device id (the authenticator refuses any other); stated so that
        // session records need not know that rule.
        clientId: session.deviceId,
        ...(session.certSerial ? { serial: session.certSerial } : {}),
        ...(session.credentialId ? { credential: session.credentialId } : {}),
        ...(replaced ? { replaced: { session: replaced.id, address: replaced.address } } : {}),
      },
    });
    // A change applied while this CONNECT was being authenticated found no session to act on.
    if (session.certSerial && revocations.isRevoked(session.certSerial)) closeSession(session, "cert_revoked");
    else if (enforcer.changedSince(session.deviceId, session.connectedAt)) void enforcer.revalidate(session.deviceId);
  });

  // The filters are in place when aedes emits this (SUBACK written); refused ones carry qos 128.
  const subscriptionWatchers = new Set<{ topicOf: (deviceId: string) => string; listener: (deviceId: string) => void }>();
  aedes.on("subscribe", (subscriptions, client) => {
    const session = sessions.of(client);
    if (!session || subscriptionWatchers.size === 0) return;
    const granted = subscriptions.filter((s) => (s.qos as number) !== 128).map((s) => s.topic);
    for (const watcher of subscriptionWatchers) {
      try {
        const topic = watcher.topicOf(session.deviceId);
        if (granted.some((filter) => topicMatches(filter, topic))) watcher.listener(session.deviceId);
      } catch (err) {
        logger.error({ err, deviceId: session.deviceId }, "broker: a subscription listener failed");
      }
    }
  });

  aedes.on("clientReady", (client) => {
    markPersistentSession(aedes, client).catch((err: unknown) => logger.error({ err, clientId: client.id }, "broker: could not record the persistent session"));
  });

  aedes.on("clientDisconnect", (client) => {
    const session = sessions.of(client);
    if (!session || !session.registered) return;
    sessions.unregister(session);
    if (session.deadlineTimer) clearTimeout(session.deadlineTimer);
    lastSeen.touch(session.deviceId, session.address);
    const successor = session.closeCause ? undefined : takenOver.get(session);
    emit({
      type: "device.disconnected",
      severity: session.closeCause ? "medium" : "info",
      actor: session.closeCause ? "system" : `device:${session.deviceId}`,
      subject: session.deviceId,
      data: {
        protocol: "mqtt",
        reason: session.closeCause ?? (successor ? "takeover" : "client"),
        seconds: Math.round((now() - session.connectedAt) / 1000),
        node: nodeId,
        session: session.id,
        ...(successor ? { replacedBy: { session: successor.id, address: successor.address } } : {}),
      },
    });
  });

  aedes.on("clientError", (client, err) => logger.debug({ err: err.message, clientId: client.id }, "broker: client error"));
  aedes.on("connectionError", (_client, err) => logger.debug({ err: err.message }, "broker: connection error"));

  // Largest packet: the payload limit plus room for the topic, or for CONNECT's id, will and password.
  const maxPacketBytes = settings.maxPayloadBytes + 256 * 1024;
  const onConnection = (stream: Duplex, listener: ListenerName, tls: TLSSocket | null, req?: IncomingMessage): void => {
    const socket = tls ?? (stream as unknown as { remoteAddress?: string });
    const address = socket.remoteAddress ?? null;
    connections.set(stream, { listener, tls, address });
    aedes.handle(stream, req);
    guardPacketSize(stream, maxPacketBytes, (announced) => {
      metrics.denials.inc({ action: "packet", reason: "packet_too_large" });
      logger.warn({ address, listener, announced, max: maxPacketBytes }, "broker: packet over the size limit; connection dropped");
    });
  };
  const onTlsError = (err: Error): void => {
    metrics.authFailures.inc({ reason: "tls_handshake" });
    logger.debug({ err: err.message }, "broker: TLS handshake failed");
  };

  try {
    listeners.push(await listenTls(material, settings.host, settings.mqttPort, onConnection, onTlsError));
    if (settings.mqttWssPort !== null) listeners.push(await listenWss(material, settings.host, settings.mqttWssPort, settings.maxPayloadBytes, onConnection, onTlsError));
    if (settings.mqttPlainPort !== null) {
      const plain = await listenPlainLoopback(settings.mqttPlainPort, onConnection);
      listeners.push(plain);
      logger.warn({ port: plain.port, host: plain.host }, "broker: INSECURE plaintext MQTT listener enabled (loopback only); credentials cross it unencrypted");
      emit({ type: "config.insecure_listener", severity: "high", actor: "system", subject: "mqtt-plain", data: { host: plain.host, port: plain.port } });
    }
  } catch (err) {
    for (const listener of listeners) await listener.close();
    unsubscribeFeed();
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await cluster?.close();
    throw err;
  }

  lastSeen.start();
  started = true;
  for (const change of pendingChanges.splice(0)) void onChange(change, false);

  const ports: Partial<Record<ListenerName, number>> = {};
  for (const listener of listeners) ports[listener.name] = listener.port;
  logger.info({ ports, node: nodeId, cluster: cluster !== null }, "broker: listening");

  let closed = false;
  return {
    nodeId,
    settings,
    ports,
    metrics,
    sessionCount: () => sessions.size,
    applyChange: (change) => onChange(change, false),
    publish: async (topic, payload, options = {}) => {
      assertPublishableTopic(topic);
      if (closed) throw new MoatError("BROKER_CLOSED", "the broker is closed; nothing was published");
      const packet = { cmd: "publish", topic, payload, qos: options.qos ?? 0, retain: options.retain ?? false, dup: false } as PublishPacket;
      return new Promise<void>((resolve, reject) => aedes.publish(packet, (err?: Error) => (err ? reject(err) : resolve())));
    },
    onDeviceMessage: (listener) => {
      deviceMessageListeners.add(listener);
      return () => void deviceMessageListeners.delete(listener);
    },
    onDeviceSubscribedTo: (topicOf, listener) => {
      const watcher = { topicOf, listener };
      subscriptionWatchers.add(watcher);
      return () => void subscriptionWatchers.delete(watcher);
    },
    banRange: (range, expiresAtMs) => authenticator.rangeBans.ban(range, expiresAtMs),
    unbanRange: (range) => authenticator.rangeBans.unban(range),
    bannedRanges: () => authenticator.rangeBans.ranges(),
    close: async () => {
      if (closed) return;
      closed = true;
      unsubscribeFeed();
      for (const listener of listeners) await listener.close();
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await cluster?.close();
      await lastSeen.stop();
    },
  };
}
