/**
 * Decides whether a CONNECT may proceed and under which identity. Every refusal carries a reason (for
 * the `auth.failed` event and the metrics) and a CONNACK return code [MQTT-3.2.2-5].
 */
import { randomUUID } from "node:crypto";
import type { Client } from "aedes";
import type { X509Certificate } from "node:crypto";
import type { TLSSocket } from "node:tls";
import { BanList } from "./ban-list.js";
import { RangeBans } from "./range-bans.js";
import { checkPeerCertificate, peerCertificateOf } from "./cert-auth.js";
import { verifyDeviceToken } from "./jwt-auth.js";
import type { BrokerSubject, Decider, DeviceDirectory, DeviceRecord } from "./ports.js";
import { TokenBucket } from "./rate-limiter.js";
import type { RevocationView } from "./revocation-view.js";
import type { AuthMethod, Session } from "./session.js";
import type { BrokerSettings } from "./settings.js";

/** CONNACK return codes of MQTT 3.1.1 §3.2.2.3. */
export const CONNACK = { IDENTIFIER_REJECTED: 2, BAD_USERNAME_OR_PASSWORD: 4, NOT_AUTHORIZED: 5 } as const;
export type ConnackCode = (typeof CONNACK)[keyof typeof CONNACK];

/** A compact JWS: header.payload.signature, each base64url. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Statuses whose devices may hold a session; a quarantined device connects with the quarantine role only. */
export const CONNECTABLE_STATUSES: ReadonlySet<string> = new Set(["active", "quarantined"]);

export interface ConnectContext {
  client: Client;
  /** The client id exactly as sent (aedes invents one for an empty id; we do not accept that). */
  clientId: string;
  username: string | undefined;
  password: Buffer | undefined;
  will: { topic: string; payload: Buffer } | null;
  /** The TLS socket carrying the connection, null on the loopback plaintext listener. */
  tls: TLSSocket | null;
  address: string | null;
  listener: string;
}

export interface ConnectRefusal {
  ok: false;
  reason: string;
  returnCode: ConnackCode;
  /** The identity the client claimed, for the event subject. */
  claimedId: string | null;
  detail?: string;
  /** Set when this refusal started a ban (reported once). */
  banStarted?: string;
}

export interface ConnectAccepted {
  ok: true;
  session: Session;
}

export interface AuthenticatorDeps {
  directory: DeviceDirectory;
  revocations: RevocationView;
  decider: Decider;
  settings: Readonly<BrokerSettings>;
  /** The issuing CAs; a function because the set changes on `ca.changed`. */
  issuingCas: () => readonly X509Certificate[];
  now?: () => number;
}

/** Builds the policy subject from a device record: the registry's facts about the device travel with every decision. */
export function subjectOf(device: DeviceRecord, certCn: string | null): BrokerSubject {
  return { id: device.id, group: device.group, status: device.status, attributes: device.attributes, certCn, roles: device.role === null ? [] : [device.role] };
}

export class Authenticator {
  readonly bans: BanList;
  /** Ranges banned by response actions (credential stuffing); the same valid-credential exception applies. */
  readonly rangeBans: RangeBans;
  private readonly now: () => number;

  constructor(private readonly deps: AuthenticatorDeps) {
    this.now = deps.now ?? Date.now;
    this.rangeBans = new RangeBans(this.now);
    const s = deps.settings;
    this.bans = new BanList({ limit: s.authFailureLimit, windowMs: s.authFailureWindowSeconds * 1000, banMs: s.banSeconds * 1000, now: this.now });
  }

  async authenticate(ctx: ConnectContext): Promise<ConnectAccepted | ConnectRefusal> {
    const result = await this.decide(ctx);
    if (result.ok) {
      if (ctx.address) this.bans.recordSuccess(`addr:${ctx.address}`);
      this.bans.recordSuccess(`id:${result.session.deviceId}`);
      return result;
    }
    if (result.reason === "banned") return result;
    // Count the failure against the address and the claimed id; either can start a ban.
    const keys = [ctx.address ? `addr:${ctx.address}` : null, result.claimedId ? `id:${result.claimedId}` : null];
    for (const key of keys) if (key && this.bans.recordFailure(key)) result.banStarted = key;
    return result;
  }

  /**
   * During a ban only a connection that can carry a valid credential is authenticated at all, and the
   * test for it costs nothing beyond what the connection already paid: a client certificate that verified
   * in the TLS handshake, or a password shaped like a JWT (three base64url parts, within the size limit)
   * for a username that is the client id. Such a JWT is then verified in full like any other, so a banned
   * source's guess costs one signature check, no more than it did before the ban (and far less than the
   * TLS handshake it had to complete); everything else is refused before any lookup.
   */
  private mayProveThroughBan(ctx: ConnectContext, cert: unknown): boolean {
    if (cert && ctx.tls?.authorized) return true;
    const password = ctx.password;
    if (password === undefined || password.length === 0 || password.length > this.deps.settings.maxTokenBytes) return false;
    if (!ctx.username || ctx.username !== ctx.clientId || !this.deps.directory.isDeviceId(ctx.clientId)) return false;
    return JWT_SHAPE.test(password.toString("latin1"));
  }

  private async decide(ctx: ConnectContext): Promise<ConnectAccepted | ConnectRefusal> {
    // Before any read of the device: a change applied after this instant is re-checked at registration.
    const started = this.now();
    const claimed = ctx.clientId || ctx.username || null;
    const refuse = (reason: string, returnCode: ConnackCode = CONNACK.NOT_AUTHORIZED, detail?: string): ConnectRefusal => ({
      ok: false,
      reason,
      returnCode,
      claimedId: claimed && this.deps.directory.isDeviceId(claimed) ? claimed : null,
      ...(detail ? { detail } : {}),
    });

    const cert = ctx.tls ? peerCertificateOf(ctx.tls) : null;
    // A ban sheds guessing; it must never lock out a device that holds a valid credential (someone else's
    // junk from a shared address, or with the device's client id, would otherwise do exactly that).
    const banned =
      ctx.address && this.bans.bannedFor(`addr:${ctx.address}`) > 0
        ? "address"
        : claimed !== null && this.bans.bannedFor(`id:${claimed}`) > 0
          ? "client id"
          : this.rangeBans.covers(ctx.address)
            ? "address range"
            : null;
    if (banned !== null && !this.mayProveThroughBan(ctx, cert)) return refuse("banned", CONNACK.NOT_AUTHORIZED, banned);

    if (!ctx.clientId) return refuse("client_id_missing", CONNACK.IDENTIFIER_REJECTED);
    if (!this.deps.directory.isDeviceId(ctx.clientId)) return refuse("client_id_invalid", CONNACK.IDENTIFIER_REJECTED);

    let deviceId: string;
    let method: AuthMethod;
    let certSerial: string | null = null;
    let certCn: string | null = null;
    let credentialId: string | null = null;
    let deadline: number;
    let device: DeviceRecord | null;

    if (cert && ctx.tls) {
      const checked = checkPeerCertificate(ctx.tls, cert, this.deps.issuingCas());
      if (!checked.ok) return refuse(checked.reason, CONNACK.NOT_AUTHORIZED, checked.detail);
      if (this.deps.revocations.isRevoked(checked.serial)) return refuse("cert_revoked");
      // [MQTT-3.1.3-3] the client id identifies the session; it must be the certificate's identity.
      if (ctx.clientId !== checked.commonName) return refuse("client_id_mismatch", CONNACK.IDENTIFIER_REJECTED);
      if (ctx.username !== undefined && ctx.username !== "" && ctx.username !== checked.commonName) return refuse("username_mismatch", CONNACK.BAD_USERNAME_OR_PASSWORD);
      device = await this.deps.directory.get(checked.commonName);
      if (!device) return refuse("device_unknown");
      if (!CONNECTABLE_STATUSES.has(device.status)) return refuse(`device_${device.status}`);
      // The certificate must be one Moat issued to this device and still holds as current.
      if (!device.certSerials.includes(checked.serial)) return refuse("cert_not_current");
      deviceId = device.id;
      method = "mtls";
      certSerial = checked.serial;
      certCn = checked.commonName;
      deadline = checked.notAfter;
    } else {
      if (ctx.password === undefined || ctx.password.length === 0) return refuse(ctx.tls ? "no_client_certificate" : "no_credentials");
      if (!ctx.username) return refuse("username_missing", CONNACK.BAD_USERNAME_OR_PASSWORD);
      if (ctx.username !== ctx.clientId) return refuse("client_id_mismatch", CONNACK.IDENTIFIER_REJECTED);
      device = await this.deps.directory.get(ctx.username);
      if (!device) return refuse("device_unknown", CONNACK.BAD_USERNAME_OR_PASSWORD);
      const s = this.deps.settings;
      const token = await verifyDeviceToken(ctx.password.toString("utf8"), device, {
        audience: s.audience,
        clockSkewSeconds: s.clockSkewSeconds,
        maxLifetimeSeconds: s.maxTokenLifetimeSeconds,
        maxTokenBytes: s.maxTokenBytes,
        now: this.now,
      });
      if (!token.ok) return refuse(token.reason, CONNACK.BAD_USERNAME_OR_PASSWORD, token.detail);
      if (!CONNECTABLE_STATUSES.has(device.status)) return refuse(`device_${device.status}`);
      deviceId = device.id;
      method = token.method;
      credentialId = token.credentialId;
      deadline = token.deadline;
    }

    const subject = subjectOf(device, certCn);
    if (ctx.will) {
      // The will is authorized now, at CONNECT, as if it were published now; aedes once let wills
      // bypass authorization. It is checked again when it is actually published.
      if (ctx.will.topic.startsWith("$")) return refuse("will_denied", CONNACK.NOT_AUTHORIZED, "reserved topic");
      if (ctx.will.payload.length > this.deps.settings.maxPayloadBytes) return refuse("will_denied", CONNACK.NOT_AUTHORIZED, "payload too large");
      const decision = this.deps.decider.decide(subject, "publish", ctx.will.topic);
      if (!decision.allow) return refuse("will_denied", CONNACK.NOT_AUTHORIZED, ctx.will.topic.slice(0, 256));
    }

    const s = this.deps.settings;
    const session: Session = {
      id: randomUUID(),
      client: ctx.client,
      deviceId,
      method,
      certSerial,
      credentialId,
      address: ctx.address,
      listener: ctx.listener,
      connectedAt: started,
      subject,
      status: device.status,
      denials: 0,
      bucket: new TokenBucket(s.messagesPerSecond, s.rateBurst, this.now),
      reportedReceiveDenials: new Set(),
      closeCause: null,
      deadline,
      deadlineTimer: null,
      registered: false,
    };
    return { ok: true, session };
  }
}
