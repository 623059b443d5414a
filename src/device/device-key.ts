// The device's own P-256 key. It is made on the device and never leaves it: the server only ever sees
// the public key (in a CSR) and signatures. A key in a file is a PKCS#8 PEM, encrypted with the device
// secret when one is given — the same encrypted-PKCS#8 format `moat cert issue --passphrase-file`
// writes, which openssl reads — and a key in a PKCS#11 token is reached through ./pkcs11-key.ts.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { MoatError } from "../errors.js";

/** What the SDK needs from a key, wherever it lives. */
export interface DeviceKey {
  readonly kind: "file" | "pkcs11";
  readonly publicKey: KeyObject;
  /** SubjectPublicKeyInfo, DER. */
  readonly spkiDer: Buffer;
  /** ECDSA with SHA-256 over `data`, DER-encoded (X.509 / CSR form). */
  signDer(data: Buffer): Promise<Buffer>;
  /** The same, synchronously (a device JWT is made while MQTT.js builds its CONNECT). */
  signDerSync(data: Buffer): Buffer;
  /** The key as PEM for a TLS client handshake (in memory only), or null when it cannot do one (a token key; see docs/device-sdk.md). */
  tlsKeyPem(): string | null;
  /** Releases what the key holds (a token session). */
  close(): Promise<void>;
}

/** A software P-256 key held in memory while the device runs. */
export class SoftwareKey implements DeviceKey {
  readonly kind = "file" as const;
  readonly publicKey: KeyObject;
  readonly spkiDer: Buffer;

  constructor(private readonly privateKey: KeyObject) {
    if (privateKey.asymmetricKeyType !== "ec" || privateKey.asymmetricKeyDetails?.namedCurve !== "prime256v1")
      throw new MoatError("CRYPTO_KEY_INVALID", "a device key must be EC P-256");
    this.publicKey = createPublicKey(privateKey);
    this.spkiDer = this.publicKey.export({ type: "spki", format: "der" });
  }

  static generate(): SoftwareKey {
    return new SoftwareKey(generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey);
  }

  /** Reads a PKCS#8 PEM; an encrypted one needs the device secret. */
  static fromPem(pem: string, secret: string | Uint8Array | undefined, file: string): SoftwareKey {
    const encrypted = pem.includes("BEGIN ENCRYPTED PRIVATE KEY");
    if (encrypted && secret === undefined) throw new MoatError("DEVICE_SECRET_INVALID", `the device key ${file} is encrypted: pass the device secret`);
    try {
      return new SoftwareKey(createPrivateKey(encrypted ? { key: pem, passphrase: Buffer.from(secret!) } : { key: pem }));
    } catch (error) {
      if (error instanceof MoatError) throw error;
      if (encrypted) throw new MoatError("DEVICE_SECRET_INVALID", `the device secret does not open ${file}`, { cause: error });
      throw new MoatError("DEVICE_STATE_INVALID", `${file} is not a PKCS#8 private key`, { cause: error });
    }
  }

  /** PKCS#8 PEM, encrypted (PBES2, AES-256-CBC) when a secret is given. */
  toPem(secret: string | Uint8Array | undefined): string {
    if (secret === undefined) return this.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    return this.privateKey.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: Buffer.from(secret) }) as string;
  }

  async signDer(data: Buffer): Promise<Buffer> {
    return this.signDerSync(data);
  }

  signDerSync(data: Buffer): Buffer {
    return sign("sha256", data, this.privateKey);
  }

  tlsKeyPem(): string {
    return this.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  }

  async close(): Promise<void> {}
}
