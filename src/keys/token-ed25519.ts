import { randomBytes } from "node:crypto";
import { MoatError } from "../errors.js";
import { Pkcs11Token, type Pkcs11Config } from "./pkcs11-token.js";

/** Label prefix of Ed25519 signing keys in the token: `moat-ed25519-<purpose>-<random>`. */
export const ED25519_KEY_LABEL_PREFIX = "moat-ed25519-";

const LOCATION = /^pkcs11:(.+)\/([^/]+)$/;

/**
 * Ed25519 signing keys generated inside the PKCS#11 token (the audit key with keys.provider=pkcs11).
 * The session opens on first use; keys are found again by their location `pkcs11:<token>/<label>`.
 */
export class TokenEd25519KeyVault {
  private token: Pkcs11Token | null = null;

  constructor(private readonly config: Pkcs11Config) {}

  generate(purpose: string): { publicKey: Buffer; location: string } {
    const token = this.open();
    // A random suffix: a failed attempt leaves an unused key behind, never one that blocks the next.
    const label = `${ED25519_KEY_LABEL_PREFIX}${purpose}-${randomBytes(6).toString("hex")}`;
    const pair = token.generateEd25519KeyPair(label);
    return { publicKey: pair.publicKey, location: `pkcs11:${token.label}/${label}` };
  }

  signer(location: string): { publicKey: Buffer; sign(message: Buffer): Buffer } {
    const match = LOCATION.exec(location);
    if (!match || !match[2]!.startsWith(ED25519_KEY_LABEL_PREFIX)) throw new MoatError("PKCS11_KEY_NOT_FOUND", `${JSON.stringify(location)} is not a Moat Ed25519 key location`);
    const token = this.open();
    if (match[1] !== token.label) throw new MoatError("PKCS11_TOKEN_NOT_FOUND", `the key is in token '${match[1]}', but the configured token is '${token.label}'`);
    const label = match[2]!;
    const privateKey = token.find("private", label).find((o) => o.label === label);
    const publicObject = token.find("public", label).find((o) => o.label === label && (!privateKey || o.id.equals(privateKey.id)));
    if (!privateKey || !publicObject) throw new MoatError("PKCS11_KEY_NOT_FOUND", `token '${token.label}' holds no key '${label}'`);
    return { publicKey: token.ed25519PublicKey(publicObject.handle), sign: (message) => token.signEd25519(privateKey.handle, message) };
  }

  close(): void {
    this.token?.close();
    this.token = null;
  }

  private open(): Pkcs11Token {
    this.token ??= Pkcs11Token.open(this.config);
    return this.token;
  }
}
