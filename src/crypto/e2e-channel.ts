import { decrypt0, encrypt0, type Decrypted } from "./cose-encrypt0.js";
import type { Keyring } from "./keyring.js";
import { ReplayGuard } from "./replay-window.js";
import { MoatError } from "../errors.js";

/**
 * The sending side of end-to-end payload encryption over MQTT: every publish is a COSE_Encrypt0
 * under the keyring's primary key, bound to its topic, with a strictly increasing sequence number.
 * The broker only ever relays ciphertext.
 */
export class PayloadSealer {
  private next: number;

  /**
   * @param initialSequence where numbering starts. A sender that restarts must not reuse numbers:
   *   persist `nextSequence`, or start from a clock value such as `Date.now() * 1000`.
   */
  constructor(private readonly keyring: Keyring, initialSequence = 0) {
    if (!Number.isSafeInteger(initialSequence) || initialSequence < 0) throw new RangeError("initialSequence must be a non-negative safe integer");
    this.next = initialSequence;
  }

  /** The sequence number the next message will carry. */
  get nextSequence(): number {
    return this.next;
  }

  seal(topic: string, payload: Uint8Array): Buffer {
    if (this.next >= Number.MAX_SAFE_INTEGER) throw new MoatError("COSE_REPLAYED", "the sequence space of this key is used up: rotate the key");
    const { kid, key } = this.keyring.primary();
    const message = encrypt0(payload, { key, kid, seq: this.next, externalAad: topic });
    this.next += 1;
    return message;
  }
}

/** The receiving side: picks the key by kid, checks the topic, and refuses replays per key id. */
export class PayloadOpener {
  private readonly replay: ReplayGuard;

  constructor(private readonly keyring: Keyring, windowSize = 1024) {
    this.replay = new ReplayGuard(windowSize);
  }

  open(topic: string, message: Uint8Array): Decrypted {
    return decrypt0(message, { keys: this.keyring, externalAad: topic, replay: this.replay });
  }
}
