import { randomBytes } from "node:crypto";
import { MoatError } from "../errors.js";
import { CA_KEY_LABEL_PREFIX, createTokenCaKey, loadTokenCaKey, Pkcs11Token, type CaKeySigner, type Pkcs11Config } from "../keys/index.js";
import type { CaKeyVault } from "./ca-registry.js";

const LOCATION = /^pkcs11:(.+)\/([^/]+)$/;

/**
 * CA keys in a PKCS#11 token (`moat init --ca-keys pkcs11`). The session opens on first use, so a
 * file-KEK installation never loads the module; signers are kept per location because each lookup
 * is a token search. Locations are `pkcs11:<token label>/moat-ca-<role>-<random>`.
 */
export class TokenCaKeys implements CaKeyVault {
  private token: Pkcs11Token | null = null;
  private readonly signers = new Map<string, CaKeySigner>();

  constructor(private readonly config: Pkcs11Config) {}

  generate(role: "root" | "issuing"): CaKeySigner {
    // A random suffix: a failed init leaves an unused key behind, never one that blocks the next attempt.
    const signer = createTokenCaKey(this.open(), `${role}-${randomBytes(6).toString("hex")}`);
    this.signers.set(signer.location, signer);
    return signer;
  }

  load(location: string): CaKeySigner {
    const cached = this.signers.get(location);
    if (cached) return cached;
    const match = LOCATION.exec(location);
    if (!match || !match[2]!.startsWith(CA_KEY_LABEL_PREFIX)) throw new MoatError("PKI_CA_INVALID", `the stored CA key location ${JSON.stringify(location)} is not a Moat PKCS#11 location`);
    const token = this.open();
    if (match[1] !== token.label)
      throw new MoatError("PKCS11_TOKEN_NOT_FOUND", `the CA key is in token '${match[1]}', but the configured token is '${token.label}'`);
    const signer = loadTokenCaKey(token, match[2]!.slice(CA_KEY_LABEL_PREFIX.length));
    this.signers.set(location, signer);
    return signer;
  }

  close(): void {
    this.signers.clear();
    this.token?.close();
    this.token = null;
  }

  private open(): Pkcs11Token {
    this.token ??= Pkcs11Token.open(this.config);
    return this.token;
  }
}
