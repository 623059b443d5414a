// A device key inside a PKCS#11 token (a secure element, a TPM's PKCS#11 face, SoftHSM in tests): made
// in the token, private, sensitive and non-extractable, so it signs but never leaves. Reached through
// the keys domain's token session (src/keys/pkcs11-token.ts, the one place that speaks PKCS#11), which
// loads the native addon only when a token is opened; moat-device.ts imports this module dynamically,
// so a device without a token never loads pkcs11js.
import type { KeyObject } from "node:crypto";
import { ecdsaRawToDer } from "../crypto/index.js";
import { MoatError } from "../errors.js";
import { Pkcs11Token, type TokenObject } from "../keys/pkcs11-token.js";
import type { DeviceKey } from "./device-key.js";

export interface Pkcs11KeyOptions {
  /** The PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so */
  module: string;
  tokenLabel: string;
  /** The user PIN (from the device's secure storage; never stored by the SDK). */
  pin: string;
  /** The label of the device key pair in the token. */
  keyLabel: string;
}

export class Pkcs11Key implements DeviceKey {
  readonly kind = "pkcs11" as const;
  readonly spkiDer: Buffer;

  private constructor(
    private readonly token: Pkcs11Token,
    private readonly privateKey: TokenObject,
    readonly publicKey: KeyObject,
  ) {
    this.spkiDer = publicKey.export({ type: "spki", format: "der" });
  }

  /** Generates the device key pair in the token; a key already under that label is refused, never replaced. */
  static generate(options: Pkcs11KeyOptions): Pkcs11Key {
    const token = openToken(options);
    try {
      if (exact(token.find("private", options.keyLabel), options.keyLabel).length > 0)
        throw new MoatError("DEVICE_STATE_EXISTS", `the token '${options.tokenLabel}' already holds a key labelled '${options.keyLabel}'`);
      const pair = token.generateP256KeyPair(options.keyLabel);
      return new Pkcs11Key(token, pair.privateKey, pair.publicKey);
    } catch (error) {
      token.close();
      throw error;
    }
  }

  /** Finds the device key pair made by generate(). */
  static open(options: Pkcs11KeyOptions): Pkcs11Key {
    const token = openToken(options);
    try {
      const [privateKey] = exact(token.find("private", options.keyLabel), options.keyLabel);
      const [publicKey] = exact(token.find("public", options.keyLabel), options.keyLabel);
      if (!privateKey || !publicKey) throw new MoatError("PKCS11_KEY_NOT_FOUND", `the token '${options.tokenLabel}' holds no key pair labelled '${options.keyLabel}'`);
      return new Pkcs11Key(token, privateKey, token.p256PublicKey(publicKey.handle));
    } catch (error) {
      token.close();
      throw error;
    }
  }

  signDerSync(data: Buffer): Buffer {
    return ecdsaRawToDer(this.token.signEcdsaSha256(this.privateKey.handle, data));
  }

  async signDer(data: Buffer): Promise<Buffer> {
    return this.signDerSync(data);
  }

  /** Node's TLS cannot use a key it cannot read: a token key connects with device JWTs (docs/device-sdk.md). */
  tlsKeyPem(): null {
    return null;
  }

  async close(): Promise<void> {
    this.token.close();
  }
}

function openToken(options: Pkcs11KeyOptions): Pkcs11Token {
  return Pkcs11Token.open({ modulePath: options.module, tokenLabel: options.tokenLabel, pin: () => options.pin });
}

function exact(objects: TokenObject[], label: string): TokenObject[] {
  return objects.filter((object) => object.label === label);
}
