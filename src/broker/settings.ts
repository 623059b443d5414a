import { MoatError } from "../errors.js";

/** The broker's own settings: the `broker.*` slice of the configuration plus tuning with safe defaults. */
export interface BrokerSettings {
  /** Address the TLS and WSS listeners bind to. */
  host: string;
  /** MQTT over TLS; 0 picks a free port (tests). */
  mqttPort: number;
  /** Plaintext MQTT, loopback only; null (the default) means none. */
  mqttPlainPort: number | null;
  /** MQTT over secure WebSockets; null means none. */
  mqttWssPort: number | null;
  /** The `aud` claim device JWTs must carry. */
  audience: string;
  maxPayloadBytes: number;
  /** Sustained publishes per second per client; bursts up to `rateBurst`. */
  messagesPerSecond: number;
  rateBurst: number;
  /** Publishes dropped for the rate limit in a row before the client is disconnected. */
  rateDropsBeforeDisconnect: number;
  /** Denied publishes before the client is disconnected. */
  maxPublishDenials: number;
  /** Failed connects per client id or address within `authFailureWindowSeconds` before a ban. */
  authFailureLimit: number;
  authFailureWindowSeconds: number;
  banSeconds: number;
  /** Allowed clock skew for JWT `iat`/`exp` [RFC 7519 §4.1.4]. */
  clockSkewSeconds: number;
  /** Longest `exp - iat` a device JWT may have. */
  maxTokenLifetimeSeconds: number;
  /** Largest JWT accepted as an MQTT password. */
  maxTokenBytes: number;
  /** How often last-seen times are written (one batch per interval). */
  lastSeenFlushMs: number;
  /** Disconnect a subscriber whose socket stays full this long (aedes drainTimeout). */
  drainTimeoutMs: number;
  /** Time allowed between the TLS handshake and CONNECT. */
  connectTimeoutMs: number;
  /** Redis URL for several nodes; null runs one node in memory. */
  redisUrl: string | null;
  /** Redis key prefix / pub-sub channel namespace shared by the nodes of one deployment. */
  redisNamespace: string;
}

export const DEFAULT_BROKER_SETTINGS: Readonly<BrokerSettings> = Object.freeze({
  host: "127.0.0.1",
  mqttPort: 8883,
  mqttPlainPort: null,
  mqttWssPort: null,
  audience: "moat-mqtt",
  maxPayloadBytes: 256 * 1024,
  messagesPerSecond: 100,
  rateBurst: 200,
  rateDropsBeforeDisconnect: 50,
  maxPublishDenials: 3,
  authFailureLimit: 5,
  authFailureWindowSeconds: 60,
  banSeconds: 300,
  clockSkewSeconds: 60,
  maxTokenLifetimeSeconds: 24 * 3600,
  maxTokenBytes: 8192,
  lastSeenFlushMs: 5000,
  drainTimeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  redisUrl: null,
  redisNamespace: "moat",
});

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;

/** True for addresses that never leave the host (127.0.0.0/8, ::1). */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.test(host);
}

/** Fills defaults, checks the combination once and freezes the result. */
export function resolveBrokerSettings(partial: Partial<BrokerSettings>): Readonly<BrokerSettings> {
  const settings: BrokerSettings = { ...DEFAULT_BROKER_SETTINGS };
  for (const [key, value] of Object.entries(partial)) {
    if (value !== undefined) (settings as unknown as Record<string, unknown>)[key] = value;
  }
  const positive: (keyof BrokerSettings)[] = [
    "maxPayloadBytes",
    "messagesPerSecond",
    "rateBurst",
    "rateDropsBeforeDisconnect",
    "maxPublishDenials",
    "authFailureLimit",
    "authFailureWindowSeconds",
    "banSeconds",
    "maxTokenLifetimeSeconds",
    "maxTokenBytes",
    "lastSeenFlushMs",
    "connectTimeoutMs",
  ];
  for (const key of positive) {
    const value = settings[key];
    if (typeof value !== "number" || !Number.isInteger(value) || value <= 0)
      throw new MoatError("CONFIG_INVALID", `broker setting '${key}' is ${JSON.stringify(value)}; allowed: a positive integer`, {
        detail: { setting: `broker.${key}` },
      });
  }
  if (settings.rateBurst < settings.messagesPerSecond) settings.rateBurst = settings.messagesPerSecond;
  if (settings.audience.length === 0)
    throw new MoatError("CONFIG_INVALID", "broker setting 'audience' is empty; allowed: a non-empty string", {
      detail: { setting: "broker.audience" },
    });
  return Object.freeze(settings);
}
