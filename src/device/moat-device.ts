// The device SDK's one object: a device that enrolls over EST, keeps its key and certificate in its
// folder, connects to the broker over mutual TLS, renews its certificate by itself and reconnects with
// backoff — and stops, with a coded error, when the server says it must (revoked, suspended,
// decommissioned, expired) instead of hammering the broker. docs/device-sdk.md describes the behaviour.
import { EventEmitter } from "node:events";
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { MqttClient, Store, type IClientOptions, type IClientPublishOptions } from "mqtt";
import { MoatError, type ErrorCode } from "../errors.js";
import { topicMatches } from "../policy/index.js";
import { Backoff, type BackoffOptions } from "./backoff.js";
import { buildCsr } from "./csr.js";
import { DeviceDir, type DeviceState, type KeyLocation } from "./device-dir.js";
import { DeviceE2e } from "./device-e2e.js";
import { deviceToken } from "./device-jwt.js";
import { SoftwareKey, type DeviceKey } from "./device-key.js";
import { DeviceOta } from "./device-ota.js";
import type { Pkcs11KeyOptions } from "./pkcs11-key.js";
import { renewalTime, type RenewalPolicy } from "./renewal.js";
import { estRequest, fetchServerInfo, type ClientIdentity, type ServerRefusal } from "./server-client.js";
import { classifyDeviceStatus, fetchDeviceStatus } from "./device-status.js";

/** The certificate a device holds now. */
export interface DeviceCertificate {
  /** Lower-case hex, as `moat cert list` shows it. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/** How the device paces itself; every field has a safe default. */
export interface DeviceBehaviour {
  /** Automatic renewal (default: at 2/3 of the lifetime ± 5 %); `false` turns it off (renew() still works). */
  renewal?: RenewalPolicy | false;
  /** Reconnection and retry backoff (default: full jitter, 1 s doubling up to 60 s). */
  backoff?: BackoffOptions;
  /** JWT mode: lifetime of each device token, seconds (default 3600); a fresh one is used before 2/3 of it. */
  jwtLifetimeSeconds?: number;
}

/** A device key inside a PKCS#11 token (SoftHSM in tests); the PIN is never stored. */
export type Pkcs11Options = Pkcs11KeyOptions;

export interface EnrollOptions extends DeviceBehaviour {
  /** The Moat API base URL, e.g. https://moat.example:8443 */
  server: string;
  /** The trust anchor (Moat's root CA, PEM) the server's certificates are checked against. */
  ca: string | Buffer;
  deviceId: string;
  /** A one-time enrollment token (`moat enroll-token create`). */
  token?: string;
  /** Zero-touch instead of a token: the factory (IDevID) certificate and its key, PEM. */
  factory?: { certPem: string | Buffer; keyPem: string | Buffer; passphrase?: string };
  /** The folder the device keeps its identity in (created 0700; must not hold a device yet). */
  dir: string;
  /** Encrypts the private key file (encrypted PKCS#8); the same secret opens it later. */
  secret?: string | Uint8Array;
  /** Overrides what GET /v1/info advertises. */
  mqttUrl?: string;
  /**
   * How the device logs in to the broker: "mtls" (default, the certificate) or "jwt" (device-signed
   * ES256 tokens over server-authenticated TLS, for devices that cannot present a client certificate).
   * A PKCS#11 key always uses "jwt".
   */
  auth?: "mtls" | "jwt";
  /** Keep the device key in a PKCS#11 token instead of a file. */
  pkcs11?: Pkcs11Options;
}

export interface OpenOptions extends DeviceBehaviour {
  dir: string;
  secret?: string | Uint8Array;
  /** The token PIN, for a device whose key is in a PKCS#11 token. */
  pkcs11Pin?: string;
}

export interface ConnectOptions {
  /** mqtts://host:port; may be omitted once the server advertised one. */
  mqttUrl?: string;
  /** MQTT keepalive, seconds (default 30). */
  keepaliveSeconds?: number;
}

export interface PublishOptions {
  qos?: 0 | 1;
  retain?: boolean;
}

export interface SubscribeOptions {
  qos?: 0 | 1;
}

export type MessageHandler = (topic: string, payload: Buffer) => void;

/** Events a MoatDevice emits (all optional to listen to). */
export interface DeviceEvents {
  /** A CONNACK accepted the session. */
  connected: [info: { sessionPresent: boolean }];
  /** The connection ended; the device will try again after `retryInMs` unless it stopped. */
  disconnected: [info: { retryInMs: number; reason: string }];
  /** A new certificate is in force. */
  renewed: [certificate: DeviceCertificate];
  /** The device gave up for good; every pending operation was rejected with this error. */
  stopped: [error: MoatError];
  /** A message handler threw; the message was still acknowledged. */
  handlerError: [error: unknown, topic: string];
}

type ConnState = "idle" | "connecting" | "connected" | "waiting" | "stopped" | "closed";

/** Node's setTimeout holds at most 2^31-1 ms (about 24.8 days); a 90-day certificate needs longer waits. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** TLS errors that mean "this is not my server", not "my server is down". */
const UNTRUSTED_TLS = new Set(["ERR_TLS_CERT_ALTNAME_INVALID", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "CERT_SIGNATURE_FAILURE", "CERT_UNTRUSTED"]);
const CONNACK_IDENTIFIER_REJECTED = 2;
const CONNACK_BAD_CREDENTIALS = 4;
const CONNACK_NOT_AUTHORIZED = 5;
/** The broker's JWT audience when an older server does not advertise one (broker.audience's default). */
const DEFAULT_JWT_AUDIENCE = "moat-mqtt";

function pemOf(value: string | Buffer): string {
  return Buffer.isBuffer(value) ? value.toString("utf8") : value;
}

function certificateView(cert: X509Certificate): DeviceCertificate {
  return { serial: cert.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, ""), notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
}

function httpsUrl(value: string, what: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new MoatError("DEVICE_OPTION_INVALID", `${what} ${JSON.stringify(value)} is not a URL`);
  }
  if (url.protocol !== "https:") throw new MoatError("DEVICE_OPTION_INVALID", `${what} must be an https:// URL, got ${url.protocol}`);
  return url.href.replace(/\/+$/, "");
}

function mqttsUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new MoatError("DEVICE_OPTION_INVALID", `the MQTT URL ${JSON.stringify(value)} is not a URL`);
  }
  // Devices speak to the broker over TLS only: their identity is the TLS client certificate.
  if (url.protocol !== "mqtts:") throw new MoatError("DEVICE_OPTION_INVALID", `the MQTT URL must be mqtts://host:port, got ${url.protocol}`);
  return url;
}

/** Waits `ms` even beyond Node's timer limit; the returned function cancels. */
function longTimer(ms: number, fire: () => void, unref: boolean): () => void {
  let timer: NodeJS.Timeout;
  const arm = (left: number) => {
    timer = setTimeout(() => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : fire()), Math.min(Math.max(0, left), MAX_TIMER_MS));
    if (unref) timer.unref();
  };
  arm(ms);
  return () => clearTimeout(timer);
}

export class MoatDevice extends EventEmitter<DeviceEvents> {
  private client: MqttClient | null = null;
  private state: ConnState = "idle";
  private readonly subscriptions = new Map<string, { handler: MessageHandler; qos: 0 | 1 }>();
  private readonly reconnectBackoff: Backoff;
  private readonly renewBackoff: Backoff;
  private cancelRenewal: (() => void) | null = null;
  private cancelReconnect: (() => void) | null = null;
  private renewing: Promise<DeviceCertificate> | null = null;
  private lastError: unknown = null;
  private stoppedBy: MoatError | null = null;
  /** Settles the first connect() once the first CONNACK arrives or the device stops. */
  private firstConnect: { resolve: () => void; reject: (error: MoatError) => void } | null = null;
  /** Set while a renewal or a token refresh moves the session (a deliberate, immediate reconnect). */
  private moving = false;
  /** JWT mode: moves the session to a fresh token before the broker ends it at the token's expiry. */
  private cancelTokenRefresh: (() => void) | null = null;
  private e2eChannel: DeviceE2e | null = null;
  private otaUpdates: DeviceOta | null = null;

  private constructor(
    private readonly dir: DeviceDir,
    private deviceState: DeviceState,
    private key: DeviceKey,
    private cert: X509Certificate,
    private readonly ca: string,
    private readonly secret: string | Uint8Array | undefined,
    private readonly behaviour: DeviceBehaviour,
  ) {
    super();
    this.reconnectBackoff = new Backoff(behaviour.backoff);
    this.renewBackoff = new Backoff(behaviour.backoff);
    this.scheduleRenewal();
  }

  /**
   * First boot: makes a P-256 key on the device, enrolls it over EST with a one-time token (or a
   * factory certificate) and stores key, certificate, trust anchor and the server's endpoints in `dir`.
   */
  static async enroll(options: EnrollOptions): Promise<MoatDevice> {
    const server = httpsUrl(options.server, "server");
    if (typeof options.deviceId !== "string" || options.deviceId.length === 0) throw new MoatError("DEVICE_OPTION_INVALID", "deviceId is required");
    if ((options.token === undefined) === (options.factory === undefined)) throw new MoatError("DEVICE_OPTION_INVALID", "enroll needs exactly one of token or factory");
    const ca = pemOf(options.ca);
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new MoatError("DEVICE_OPTION_INVALID", "ca must be the PEM trust anchor (Moat's root CA)");
    if (options.mqttUrl !== undefined) mqttsUrl(options.mqttUrl);
    const dir = new DeviceDir(options.dir);
    dir.prepare();

    const info = await fetchServerInfo(server, ca);
    const key: DeviceKey = options.pkcs11 ? (await import("./pkcs11-key.js")).Pkcs11Key.generate(options.pkcs11) : SoftwareKey.generate();
    let cert: X509Certificate;
    try {
      const csr = await buildCsr(options.deviceId, key);
      const auth = options.token !== undefined ? { token: options.token } : { client: { certPem: pemOf(options.factory!.certPem), keyPem: pemOf(options.factory!.keyPem) } };
      const answer = await estRequest(info.estUrl, ca, "simpleenroll", csr, auth);
      if (!answer.ok) throw refusedEnrollment(answer.refusal, options.deviceId);
      cert = checkIssued(answer.certificateDer, key, options.deviceId);
    } catch (error) {
      await key.close();
      throw error;
    }

    // Key, certificate and trust anchor first; device.json last, as the commit point.
    if (key instanceof SoftwareKey) dir.writeKey(1, key.toPem(options.secret));
    dir.writeCertificate(1, cert.toString());
    dir.writeCa(ca);
    const state: DeviceState = {
      format: 1,
      deviceId: options.deviceId,
      server,
      estUrl: info.estUrl,
      mqttUrl: options.mqttUrl ?? info.mqttUrl,
      trustDomain: info.trustDomain,
      generation: 1,
      receivedAt: new Date().toISOString(),
      key: options.pkcs11
        ? { kind: "pkcs11", module: options.pkcs11.module, tokenLabel: options.pkcs11.tokenLabel, keyLabel: options.pkcs11.keyLabel }
        : { kind: "file", encrypted: options.secret !== undefined },
      // Node's TLS cannot use a key it cannot read, so a token key logs in with device JWTs.
      auth: options.pkcs11 ? "jwt" : (options.auth ?? "mtls"),
      jwtAudience: info.jwtAudience ?? DEFAULT_JWT_AUDIENCE,
    };
    dir.writeState(state);
    return new MoatDevice(dir, state, key, cert, ca, options.secret, behaviourOf(options));
  }

  /** Later boots: key, certificate, trust anchor and endpoints from `dir`. */
  static async open(options: OpenOptions): Promise<MoatDevice> {
    const dir = new DeviceDir(options.dir);
    const state = dir.readState();
    const key = await openKey(state.key, dir, state.generation, options);
    const cert = dir.readCertificate(state.generation);
    if (!cert.publicKey.export({ type: "spki", format: "der" }).equals(key.spkiDer))
      throw new MoatError("DEVICE_STATE_INVALID", `the certificate and the key in ${options.dir} (generation ${state.generation}) do not belong together`);
    return new MoatDevice(dir, state, key, cert, dir.readCa(), options.secret, behaviourOf(options));
  }

  get deviceId(): string {
    return this.deviceState.deviceId;
  }

  get certificate(): DeviceCertificate {
    return certificateView(this.cert);
  }

  /** The MQTT endpoint the device uses (advertised by the server or given to connect()). */
  get mqttUrl(): string | null {
    return this.deviceState.mqttUrl;
  }

  get connected(): boolean {
    return this.state === "connected";
  }

  /** How the device logs in to the broker: its certificate (mtls) or device-signed tokens (jwt). */
  get auth(): "mtls" | "jwt" {
    return this.deviceState.auth;
  }

  /** End-to-end protected payloads (COSE) on the device's own topics; add keys to `e2e.keyring` first. */
  get e2e(): DeviceE2e {
    this.e2eChannel ??= new DeviceE2e({
      deviceId: this.deviceId,
      publish: (topic, payload, options) => this.publish(topic, payload, options),
      subscribe: (filter, handler, options) => this.subscribe(filter, handler, options),
      reportOpenFailure: (error, topic) => this.emit("handlerError", error, topic),
    });
    return this.e2eChannel;
  }

  /** Over-the-air updates (TUF client, secure-boot verifier) on this device's server and topics. */
  get ota(): DeviceOta {
    this.otaUpdates ??= new DeviceOta({
      deviceId: this.deviceId,
      server: this.deviceState.server,
      ca: this.ca,
      publish: (topic, payload, options) => this.publish(topic, payload, options),
      subscribe: (filter, handler, options) => this.subscribe(filter, handler, options),
    });
    return this.otaUpdates;
  }

  /**
   * Connects over mutual TLS (server name checked, client id = device id) and resolves on the first
   * accepted CONNACK. Transient failures are retried with backoff; a refusal the server explains
   * (revoked, suspended, decommissioned, expired) rejects with its code and stops the device.
   */
  async connect(options: ConnectOptions = {}): Promise<void> {
    this.assertUsable();
    if (this.client) {
      if (this.state === "connected") return;
      return new Promise((resolve, reject) => this.onceConnected(resolve, reject));
    }
    const urlText = options.mqttUrl ?? this.deviceState.mqttUrl;
    if (!urlText) throw new MoatError("DEVICE_OPTION_INVALID", "no MQTT URL: the server advertises none, pass connect({ mqttUrl })");
    const url = mqttsUrl(urlText);
    if (options.mqttUrl !== undefined && options.mqttUrl !== this.deviceState.mqttUrl) this.commitState({ ...this.deviceState, mqttUrl: options.mqttUrl });
    if (this.certificate.notAfter.getTime() <= Date.now()) throw this.stop(expiredError(this.certificate));

    const host = url.hostname.replace(/^\[|\]$/g, "");
    const port = Number(url.port || 8883);
    const clientOptions: IClientOptions = {
      clientId: this.deviceId,
      protocolVersion: 4,
      // The broker keeps the session (subscriptions, queued QoS 1) across reconnects and renewals.
      clean: false,
      keepalive: options.keepaliveSeconds ?? 30,
      // Reconnection is ours: backoff with jitter, and the reason for a refusal is looked up first.
      reconnectPeriod: 0,
      manualConnect: true,
      connectTimeout: 30_000,
      outgoingStore: new Store(),
      incomingStore: new Store(),
    };
    const jwt = this.deviceState.auth === "jwt";
    const client = new MqttClient((mqtt) => {
      // Called for every (re)connection, before MQTT.js writes CONNECT: the current certificate, or a fresh token.
      if (jwt) this.freshToken(mqtt.options);
      const tlsKey = jwt ? null : this.key.tlsKeyPem();
      return tlsConnect({
        host,
        port,
        ...(isIP(host) === 0 ? { servername: host } : {}),
        ca: this.ca,
        ...(tlsKey !== null ? { key: tlsKey, cert: this.cert.toString() } : {}),
        minVersion: "TLSv1.2",
      });
    }, clientOptions);
    this.client = client;
    client.on("connect", (connack) => this.onConnected(connack.sessionPresent));
    client.on("error", (error) => (this.lastError = error));
    client.on("close", () => this.onClosed());
    client.on("message", (topic, payload) => this.dispatch(topic, payload));
    const connected = new Promise<void>((resolve, reject) => this.onceConnected(resolve, reject));
    this.state = "connecting";
    client.connect();
    return connected;
  }

  /** Publishes; resolves when the broker acknowledged a QoS 1 message (queued while offline). */
  async publish(topic: string, payload: string | Uint8Array, options: PublishOptions = {}): Promise<void> {
    const client = this.requireClient();
    const publishOptions: IClientPublishOptions = { qos: options.qos ?? 0, retain: options.retain ?? false };
    try {
      await client.publishAsync(topic, typeof payload === "string" ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), publishOptions);
    } catch (error) {
      throw this.operationError(error, `publish to ${topic}`);
    }
  }

  /**
   * Subscribes `handler` to `filter`. Resolves on a granted SUBACK; a refused one (0x80: the policy
   * does not allow it) rejects with DEVICE_SUBSCRIBE_REFUSED and keeps nothing.
   */
  async subscribe(filter: string, handler: MessageHandler, options: SubscribeOptions = {}): Promise<void> {
    const qos = options.qos ?? 1;
    for (;;) {
      const client = this.requireClient();
      try {
        const granted = await client.subscribeAsync(filter, { qos });
        if (granted.length !== 1 || granted[0]!.qos === 128) throw new MoatError("DEVICE_SUBSCRIBE_REFUSED", `the broker refused the subscription to ${filter}`, { detail: { filter } });
        this.subscriptions.set(filter, { handler, qos });
        return;
      } catch (error) {
        if (error instanceof MoatError) throw error;
        // MQTT.js rejects a SUBACK with a failure code (0x80) carrying the packet.
        const granted = (error as { packet?: { granted?: unknown } }).packet?.granted;
        if (Array.isArray(granted) && granted.some((code) => typeof code === "number" && (code & 0x80) !== 0))
          throw new MoatError("DEVICE_SUBSCRIBE_REFUSED", `the broker refused the subscription to ${filter}`, { detail: { filter } });
        // The connection dropped before the SUBACK: subscribe again on the next connection.
        if (this.finished() || client.connected) throw this.operationError(error, `subscribe to ${filter}`);
        await new Promise<void>((resolve, reject) => this.onceConnected(resolve, reject));
      }
    }
  }

  async unsubscribe(filter: string): Promise<void> {
    const client = this.requireClient();
    this.subscriptions.delete(filter);
    await client.unsubscribeAsync(filter).catch((error: unknown) => {
      throw this.operationError(error, `unsubscribe from ${filter}`);
    });
  }

  /**
   * Renews the certificate now (EST simplereenroll, authenticated by the current certificate) with a
   * new key. A connected session moves to the new certificate; subscriptions and queued QoS 1 messages
   * survive the move.
   */
  renew(): Promise<DeviceCertificate> {
    try {
      this.assertUsable();
    } catch (error) {
      return Promise.reject(error as MoatError);
    }
    this.renewing ??= this.renewOnce().finally(() => (this.renewing = null));
    return this.renewing;
  }

  /** Disconnects and stops every timer; the device folder stays as it is. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    const wasStopped = this.state === "stopped";
    this.state = "closed";
    this.cancelRenewal?.();
    this.cancelReconnect?.();
    this.cancelTokenRefresh?.();
    this.firstConnect?.reject(new MoatError("DEVICE_CLOSED", "the device was closed before it connected"));
    this.firstConnect = null;
    const client = this.client;
    if (client && !wasStopped) await new Promise<void>((resolve) => client.end(true, {}, () => resolve()));
    await this.key.close();
  }

  // --- connection life cycle ---

  private onceConnected(resolve: () => void, reject: (error: MoatError) => void): void {
    if (this.state === "connected") return resolve();
    if (this.stoppedBy) return reject(this.stoppedBy);
    const previous = this.firstConnect;
    this.firstConnect = {
      resolve: () => {
        previous?.resolve();
        resolve();
      },
      reject: (error) => {
        previous?.reject(error);
        reject(error);
      },
    };
  }

  private onConnected(sessionPresent: boolean): void {
    if (this.state === "closed" || this.state === "stopped") return;
    this.state = "connected";
    this.lastError = null;
    this.reconnectBackoff.reset();
    // A broker that lost the session (restarted, or another node) gets the subscriptions again.
    if (!sessionPresent && this.subscriptions.size > 0 && this.client) {
      const filters = Object.fromEntries([...this.subscriptions].map(([filter, { qos }]) => [filter, { qos }]));
      this.client.subscribe(filters, (error, granted) => {
        const refused = (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
        for (const filter of refused) this.subscriptions.delete(filter);
        if (error && this.client?.connected) this.client.stream.destroy();
      });
    }
    const waiting = this.firstConnect;
    this.firstConnect = null;
    waiting?.resolve();
    this.emit("connected", { sessionPresent });
  }

  private onClosed(): void {
    if (this.state === "closed" || this.state === "stopped") return;
    const error = this.lastError;
    this.lastError = null;
    this.state = "waiting";
    if (this.moving) {
      // A renewal closed the connection on purpose: back at once, with the new certificate.
      this.moving = false;
      this.emit("disconnected", { retryInMs: 0, reason: "certificate renewed" });
      this.reconnectNow();
      return;
    }
    void this.diagnose(error).then((terminal) => {
      if (this.state !== "waiting") return;
      if (terminal) {
        this.stop(terminal);
        return;
      }
      const wait = this.reconnectBackoff.next();
      this.emit("disconnected", { retryInMs: wait, reason: describe(error) });
      this.cancelReconnect = longTimer(wait, () => this.reconnectNow(), false);
    });
  }

  private reconnectNow(): void {
    this.cancelReconnect = null;
    const client = this.client;
    if (!client || this.state !== "waiting") return;
    if (this.certificate.notAfter.getTime() <= Date.now()) {
      this.stop(expiredError(this.certificate));
      return;
    }
    this.state = "connecting";
    // Keep the stores: unacknowledged QoS 1 messages are sent again on the new connection.
    client.reconnect({ incomingStore: client.incomingStore, outgoingStore: client.outgoingStore });
  }

  /**
   * Why the last connection failed, when the answer means "stop": the certificate expired, the server
   * is not the one the trust anchor names, the broker refused the identity, or (CONNACK 5) the
   * server's status endpoint says the device is revoked, suspended or decommissioned. Null: retry.
   */
  private async diagnose(error: unknown): Promise<MoatError | null> {
    if (this.certificate.notAfter.getTime() <= Date.now()) return expiredError(this.certificate);
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === "string" && UNTRUSTED_TLS.has(code))
      return new MoatError("DEVICE_SERVER_UNTRUSTED", `the broker's certificate does not verify against the trust anchor (${code})`, { detail: { reason: code } });
    if (code === CONNACK_IDENTIFIER_REJECTED || code === CONNACK_BAD_CREDENTIALS)
      return new MoatError("DEVICE_CONNECT_REFUSED", `the broker refused the device's identity (CONNACK ${code})`, { detail: { connack: code } });
    if (code === CONNACK_NOT_AUTHORIZED || error === null) {
      // Refused, or dropped by the broker: ask the server why, with the certificate itself.
      if (this.key.tlsKeyPem() === null) {
        // A token key cannot authenticate the question over TLS: a refusal is final for it (docs/device-sdk.md).
        if (code === CONNACK_NOT_AUTHORIZED)
          return new MoatError("DEVICE_CONNECT_REFUSED", "the broker refused the device (CONNACK 5); a device whose key is in a PKCS#11 token cannot ask the server why, so it stops", { detail: { connack: code } });
        return null;
      }
      const status = await fetchDeviceStatus(this.deviceState.server, this.ca, this.identity()).catch(() => null);
      const terminal = status ? classifyDeviceStatus(status) : null;
      if (terminal) return terminal;
    }
    return null;
  }

  /** Closed or stopped: nothing more will happen (a method, so the compiler re-reads the state after an await). */
  private finished(): boolean {
    return this.state === "closed" || this.state === "stopped";
  }

  private stop(error: MoatError): MoatError {
    if (this.state === "closed" || this.state === "stopped") return this.stoppedBy ?? error;
    this.state = "stopped";
    this.stoppedBy = error;
    this.cancelRenewal?.();
    this.cancelReconnect?.();
    this.cancelTokenRefresh?.();
    const client = this.client;
    // Pending QoS 1 publishes are rejected (with this error, through operationError).
    client?.end(true);
    const waiting = this.firstConnect;
    this.firstConnect = null;
    waiting?.reject(error);
    this.emit("stopped", error);
    return error;
  }

  private dispatch(topic: string, payload: Buffer): void {
    for (const [filter, { handler }] of this.subscriptions) {
      if (!topicMatches(filter, topic)) continue;
      try {
        handler(topic, payload);
      } catch (error) {
        this.emit("handlerError", error, topic);
      }
    }
  }

  // --- renewal ---

  private scheduleRenewal(): void {
    this.cancelRenewal?.();
    this.cancelRenewal = null;
    if (this.behaviour.renewal === false || this.finished() || this.key.tlsKeyPem() === null) return;
    const received = this.deviceState.receivedAt ? new Date(this.deviceState.receivedAt) : undefined;
    const at = renewalTime(this.certificate, this.behaviour.renewal ?? {}, received);
    this.cancelRenewal = longTimer(at.getTime() - Date.now(), () => void this.automaticRenewal(), true);
  }

  private async automaticRenewal(): Promise<void> {
    if (this.state === "closed" || this.state === "stopped") return;
    try {
      await this.renew();
      this.renewBackoff.reset();
    } catch (error) {
      if (this.finished()) return;
      const coded = error instanceof MoatError ? error : new MoatError("DEVICE_RENEW_REFUSED", String(error), { cause: error });
      if (isTerminal(coded.code)) {
        this.stop(coded);
        return;
      }
      // Transient (server unreachable): try again, within the time the certificate has left.
      const wait = Math.min(this.renewBackoff.next(), Math.max(0, this.certificate.notAfter.getTime() - Date.now()));
      this.cancelRenewal = longTimer(wait, () => void this.automaticRenewal(), true);
    }
  }

  private async renewOnce(): Promise<DeviceCertificate> {
    if (this.key.tlsKeyPem() === null)
      throw new MoatError("DEVICE_OPTION_INVALID", "a key in a PKCS#11 token cannot authenticate EST re-enrollment (Node's TLS cannot use it); see docs/device-sdk.md");
    const generation = this.deviceState.generation + 1;
    if (this.certificate.notAfter.getTime() <= Date.now()) throw this.stop(expiredError(this.certificate));
    // A key left by an attempt whose answer was lost is used again: the server then resends the
    // certificate it already issued for it (docs/pki.md, Re-enrollment) instead of refusing.
    const key = this.dir.hasKey(generation) ? SoftwareKey.fromPem(this.dir.readKey(generation), this.secret, `key-${generation}.pem`) : SoftwareKey.generate();
    if (!this.dir.hasKey(generation)) this.dir.writeKey(generation, key.toPem(this.secret));
    const csr = await buildCsr(this.deviceId, key);
    const answer = await estRequest(this.deviceState.estUrl, this.ca, "simplereenroll", csr, { client: this.identity() });
    if (!answer.ok) {
      const error = refusedRenewal(answer.refusal, this.certificate);
      if (isTerminal(error.code)) this.stop(error);
      throw error;
    }
    const cert = checkIssued(answer.certificateDer, key, this.deviceId);
    this.dir.writeCertificate(generation, cert.toString());
    this.commitState({ ...this.deviceState, generation, receivedAt: new Date().toISOString() });
    this.dir.pruneGenerations(generation);
    const oldKey = this.key;
    this.key = key;
    this.cert = cert;
    await oldKey.close();
    this.scheduleRenewal();
    const view = this.certificate;
    this.emit("renewed", view);
    // Move a live session to the new certificate: close the connection; onClosed reconnects at once.
    if (this.state === "connected" && this.client) {
      this.moving = true;
      this.client.stream.destroy();
    }
    return view;
  }

  // --- JWT mode ---

  /** Puts a fresh device token into the CONNECT options and arms the refresh before it expires. */
  private freshToken(options: IClientOptions): void {
    const lifetimeSeconds = this.behaviour.jwtLifetimeSeconds ?? 3600;
    const { token, expiresAt } = deviceToken(this.key, { deviceId: this.deviceId, audience: this.deviceState.jwtAudience ?? DEFAULT_JWT_AUDIENCE, lifetimeSeconds });
    options.username = this.deviceId;
    options.password = token;
    this.cancelTokenRefresh?.();
    const refreshIn = Math.max(1_000, Math.round(((expiresAt - Date.now()) * 2) / 3));
    this.cancelTokenRefresh = longTimer(
      refreshIn,
      () => {
        // Move the session to a new token (MQTT 3.1.1 has no re-authentication); a reconnect on its own also makes one.
        if (this.state === "connected" && this.client) {
          this.moving = true;
          this.client.stream.destroy();
        }
      },
      true,
    );
  }

  // --- helpers ---

  private commitState(state: DeviceState): void {
    this.dir.writeState(state);
    this.deviceState = state;
  }

  private identity(): ClientIdentity {
    const keyPem = this.key.tlsKeyPem();
    if (keyPem === null) throw new MoatError("DEVICE_OPTION_INVALID", "this device's key cannot do a TLS handshake");
    return { keyPem, certPem: this.cert.toString() };
  }

  private assertUsable(): void {
    if (this.state === "closed") throw new MoatError("DEVICE_CLOSED", "the device was closed");
    if (this.stoppedBy) throw this.stoppedBy;
  }

  private requireClient(): MqttClient {
    this.assertUsable();
    if (!this.client) throw new MoatError("DEVICE_NOT_CONNECTED", "call connect() first");
    return this.client;
  }

  private operationError(error: unknown, what: string): MoatError {
    if (error instanceof MoatError) return error;
    if (this.stoppedBy) return this.stoppedBy;
    if (this.state === "closed") return new MoatError("DEVICE_CLOSED", `${what}: the device was closed first`, { cause: error });
    return new MoatError("DEVICE_NOT_CONNECTED", `${what} failed: ${(error as Error).message}`, { cause: error });
  }
}

function behaviourOf(options: DeviceBehaviour): DeviceBehaviour {
  return {
    ...(options.renewal !== undefined ? { renewal: options.renewal } : {}),
    ...(options.backoff ? { backoff: options.backoff } : {}),
    ...(options.jwtLifetimeSeconds !== undefined ? { jwtLifetimeSeconds: options.jwtLifetimeSeconds } : {}),
  };
}

/** The device key where device.json says it is: a (possibly encrypted) file, or a PKCS#11 token. */
async function openKey(location: KeyLocation, dir: DeviceDir, generation: number, options: OpenOptions): Promise<DeviceKey> {
  if (location.kind === "file") return SoftwareKey.fromPem(dir.readKey(generation), options.secret, `${dir.path}/key-${generation}.pem`);
  if (options.pkcs11Pin === undefined) throw new MoatError("DEVICE_SECRET_INVALID", "the device key is in a PKCS#11 token: pass pkcs11Pin to open()");
  const { Pkcs11Key } = await import("./pkcs11-key.js");
  return Pkcs11Key.open({ module: location.module, tokenLabel: location.tokenLabel, keyLabel: location.keyLabel, pin: options.pkcs11Pin });
}

function describe(error: unknown): string {
  if (error === null || error === undefined) return "connection closed";
  const code = (error as { code?: unknown }).code;
  return `${(error as Error).message ?? String(error)}${code !== undefined ? ` (${String(code)})` : ""}`;
}

/** Codes after which retrying cannot help: only a person (a new token, a status change) can. */
const TERMINAL: ReadonlySet<ErrorCode> = new Set(["DEVICE_REVOKED", "DEVICE_SUSPENDED", "DEVICE_DECOMMISSIONED", "DEVICE_CERT_EXPIRED", "DEVICE_RENEW_REFUSED", "DEVICE_SERVER_UNTRUSTED", "DEVICE_CONNECT_REFUSED"]);

function isTerminal(code: ErrorCode): boolean {
  return TERMINAL.has(code);
}

export function expiredError(certificate: DeviceCertificate): MoatError {
  return new MoatError(
    "DEVICE_CERT_EXPIRED",
    `the device certificate ${certificate.serial} expired at ${certificate.notAfter.toISOString()}: it can no longer connect or renew itself; enroll again with a new token (or a factory certificate), see docs/device-sdk.md`,
    { detail: { serial: certificate.serial, notAfter: certificate.notAfter.toISOString() } },
  );
}

/** The issued certificate must be for the key the device made and the device it asked for. */
function checkIssued(der: Buffer, key: DeviceKey, deviceId: string): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch (error) {
    throw new MoatError("DEVICE_SERVER_ANSWER_INVALID", "the EST answer does not hold a readable certificate", { cause: error });
  }
  if (!cert.publicKey.export({ type: "spki", format: "der" }).equals(key.spkiDer)) throw new MoatError("DEVICE_SERVER_ANSWER_INVALID", "the issued certificate is not for the device's key");
  if (!/(^|\n)CN=/.test(cert.subject) || !cert.subject.split("\n").includes(`CN=${deviceId}`))
    throw new MoatError("DEVICE_SERVER_ANSWER_INVALID", `the issued certificate names ${cert.subject.replace(/\n/g, ", ")}, not ${deviceId}`);
  return cert;
}

function refusedEnrollment(refusal: ServerRefusal, deviceId: string): MoatError {
  return new MoatError("DEVICE_ENROLL_REFUSED", `the server refused to enroll ${deviceId}: ${refusal.code ?? `HTTP ${refusal.status}`}: ${refusal.detail}`, {
    detail: { serverCode: refusal.code, status: refusal.status },
  });
}

function refusedRenewal(refusal: ServerRefusal, certificate: DeviceCertificate): MoatError {
  const detail = { serverCode: refusal.code, status: refusal.status, serial: certificate.serial };
  if (refusal.code === "PKI_REENROLL_CERT_REVOKED") return new MoatError("DEVICE_REVOKED", `the device certificate ${certificate.serial} is revoked: ${refusal.detail}`, { detail });
  if (refusal.code === "PKI_REENROLL_CERT_EXPIRED") return expiredError(certificate);
  if (refusal.status === 429 || refusal.status >= 500) return new MoatError("DEVICE_SERVER_UNREACHABLE", `renewal is not possible now (HTTP ${refusal.status}): ${refusal.detail}`, { detail });
  return new MoatError("DEVICE_RENEW_REFUSED", `the server refused to renew ${certificate.serial}: ${refusal.code ?? `HTTP ${refusal.status}`}: ${refusal.detail}`, { detail });
}

