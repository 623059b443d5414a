/**
 * The broker's view of an authenticated MQTT connection and the indexes enforcement needs
 * (by device id and by certificate serial), kept separate from aedes' own client table.
 */
import type { Client } from "aedes";
import type { TokenBucket } from "./rate-limiter.js";
import type { BrokerSubject, DeviceStatus } from "./ports.js";

export type AuthMethod = "mtls" | "jwt-key" | "jwt-secret";

export interface Session {
  /** Random id of this connection, carried by its `device.connected` and `device.disconnected` events. */
  readonly id: string;
  readonly client: Client;
  readonly deviceId: string;
  readonly method: AuthMethod;
  /** Serial of the client certificate (mTLS only). */
  readonly certSerial: string | null;
  /** Key or secret id that verified the token (JWT only); never the secret. */
  readonly credentialId: string | null;
  readonly address: string | null;
  readonly listener: string;
  readonly connectedAt: number;
  /** Current policy subject; replaced when the device record changes. */
  subject: BrokerSubject;
  status: DeviceStatus;
  /** Denied publishes so far. */
  denials: number;
  readonly bucket: TokenBucket;
  /** Topics whose delivery was denied and already reported (bounds `acl.denied` events). */
  readonly reportedReceiveDenials: Set<string>;
  /** Set when enforcement closes the session; the will is then not published. */
  closeCause: string | null;
  /** Epoch ms at which the credential stops being valid. */
  deadline: number;
  deadlineTimer: NodeJS.Timeout | null;
  /** Has the `client` event registered this session in the indexes? */
  registered: boolean;
}

/** Indexes of the live sessions on this node. */
export class SessionRegistry {
  private readonly byClient = new WeakMap<Client, Session>();
  private readonly byDevice = new Map<string, Session>();
  private readonly bySerial = new Map<string, Set<Session>>();

  /** Links the session to its client at authentication, before aedes registers the client. */
  attach(session: Session): void {
    this.byClient.set(session.client, session);
  }

  of(client: Client | null | undefined): Session | undefined {
    return client ? this.byClient.get(client) : undefined;
  }

  /** Indexes the session once aedes has registered its client (after any takeover of the same id). */
  register(session: Session): void {
    session.registered = true;
    this.byDevice.set(session.deviceId, session);
    if (session.certSerial) {
      let set = this.bySerial.get(session.certSerial);
      if (!set) this.bySerial.set(session.certSerial, (set = new Set()));
      set.add(session);
    }
  }

  unregister(session: Session): void {
    if (!session.registered) return;
    session.registered = false;
    if (this.byDevice.get(session.deviceId) === session) this.byDevice.delete(session.deviceId);
    if (session.certSerial) {
      const set = this.bySerial.get(session.certSerial);
      set?.delete(session);
      if (set && set.size === 0) this.bySerial.delete(session.certSerial);
    }
  }

  forDevice(deviceId: string): Session | undefined {
    return this.byDevice.get(deviceId);
  }

  forSerial(serial: string): readonly Session[] {
    return [...(this.bySerial.get(serial) ?? [])];
  }

  all(): readonly Session[] {
    return [...this.byDevice.values()];
  }

  get size(): number {
    return this.byDevice.size;
  }
}
