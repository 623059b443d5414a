// End-to-end protection of a device's own payloads (COSE_Encrypt0, RFC 9052) through the broker, with
// the crypto domain's channel: PayloadSealer/PayloadOpener bind each message to its topic and a
// strictly increasing sequence number, so the broker relays ciphertext it can neither read, move to
// another topic, nor replay. Only the device's own topics (devices/<id>/…) are sealed or opened here.
import { deriveDeviceKey, Keyring, PayloadOpener, PayloadSealer, type Decrypted, type DeviceKeyContext } from "../crypto/index.js";
import { MoatError } from "../errors.js";

/** What DeviceE2e needs from the device: its id and its publish/subscribe. */
export interface E2eTransport {
  readonly deviceId: string;
  publish(topic: string, payload: Uint8Array, options: { qos?: 0 | 1 }): Promise<void>;
  subscribe(filter: string, handler: (topic: string, payload: Buffer) => void, options: { qos?: 0 | 1 }): Promise<void>;
  /** Where a message that does not open (tampered, replayed, unknown key) is reported. */
  reportOpenFailure(error: unknown, topic: string): void;
}

export class DeviceE2e {
  /** The A256GCM keys (by key id); the primary one seals. */
  readonly keyring = new Keyring();
  private readonly sealer: PayloadSealer;
  private readonly opener: PayloadOpener;

  /**
   * @param initialSequence where sealing numbers start. The default is the clock in microseconds, so a
   *   device that restarts never reuses a number its peers have seen (persist `nextSequence` instead if
   *   the device has no reliable clock).
   */
  constructor(
    private readonly transport: E2eTransport,
    initialSequence = Date.now() * 1000,
  ) {
    this.sealer = new PayloadSealer(this.keyring, initialSequence);
    this.opener = new PayloadOpener(this.keyring);
  }

  /** Adds a content key (32 bytes); the first added, or one added with primary, seals. */
  addKey(kid: string | Uint8Array, key: Uint8Array, options: { primary?: boolean } = {}): this {
    this.keyring.add(kid, key, options);
    return this;
  }

  /** Derives the key shared with an application (ECDH + HKDF, src/crypto/device-key.ts) and adds it. */
  addDerivedKey(context: Omit<DeviceKeyContext, "deviceId">, options: { primary?: boolean } = {}): this {
    const key = deriveDeviceKey({ ...context, deviceId: this.transport.deviceId });
    try {
      this.keyring.add(context.kid, key, options);
    } finally {
      key.fill(0);
    }
    return this;
  }

  get nextSequence(): number {
    return this.sealer.nextSequence;
  }

  seal(topic: string, payload: Uint8Array | string): Buffer {
    this.assertOwn(topic);
    return this.sealer.seal(topic, typeof payload === "string" ? Buffer.from(payload) : payload);
  }

  /** Opens a message received on `topic`; tampered, replayed or foreign messages throw COSE_* errors. */
  open(topic: string, message: Uint8Array): Decrypted {
    this.assertOwn(topic);
    return this.opener.open(topic, message);
  }

  /** Seals and publishes. */
  publish(topic: string, payload: Uint8Array | string, options: { qos?: 0 | 1 } = {}): Promise<void> {
    return this.transport.publish(topic, this.seal(topic, payload), options);
  }

  /** Subscribes and hands the handler opened plaintext; messages that do not open never reach it. */
  subscribe(filter: string, handler: (topic: string, plaintext: Buffer) => void, options: { qos?: 0 | 1 } = {}): Promise<void> {
    this.assertOwn(filter);
    return this.transport.subscribe(
      filter,
      (topic, payload) => {
        let opened: Decrypted;
        try {
          opened = this.open(topic, payload);
        } catch (error) {
          this.transport.reportOpenFailure(error, topic);
          return;
        }
        handler(topic, opened.plaintext);
      },
      options,
    );
  }

  private assertOwn(topic: string): void {
    const own = `devices/${this.transport.deviceId}/`;
    if (!topic.startsWith(own)) throw new MoatError("DEVICE_OPTION_INVALID", `end-to-end protection covers the device's own topics (${own}…), not ${topic}`);
  }
}
