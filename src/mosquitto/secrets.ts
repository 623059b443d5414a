/**
 * Where the admin password of a Mosquitto directory is kept: sealed by Moat's envelope (under the KEK)
 * in the store's key-value table, as base64 text, so KEK rotation finds and re-wraps it like every other
 * envelope. Neither the directory nor a log ever holds it in the clear.
 */
import { MoatError } from "../errors.js";

export interface MosquittoSecrets {
  put(name: string, secret: Buffer): Promise<void>;
  /** MOSQUITTO_NOT_SET_UP when nothing is stored under the name (setup ran against another data dir). */
  get(name: string): Promise<Buffer>;
}

/** The store's key-value table as this needs it. */
export interface KeyValuePort {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
}

/** Moat's envelope as this needs it; the additional data binds a sealed value to its name. */
export interface SealerPort {
  seal(plaintext: Buffer, aad: string): Promise<Buffer>;
  open(sealed: Buffer, aad: string): Promise<Buffer>;
}

export function sealedSecrets(store: KeyValuePort, sealer: SealerPort): MosquittoSecrets {
  return {
    put: async (name, secret) => store.set(name, (await sealer.seal(secret, name)).toString("base64")),
    get: async (name) => {
      const stored = await store.get(name);
      if (stored === undefined)
        throw new MoatError("MOSQUITTO_NOT_SET_UP", `this installation holds no admin password for ${name.replace(/^mosquitto\.admin:/, "")}: run moat mosquitto setup with this data dir`);
      return sealer.open(Buffer.from(stored, "base64"), name);
    },
  };
}
