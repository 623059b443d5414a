import { randomBytes } from "node:crypto";
import { MoatError } from "../errors.js";
import { Pkcs11Token, type Pkcs11Config } from "./pkcs11-token.js";

/** Label prefix of Ed25519 signing keys in the token: `moat-ed25519-<purpose>-<random>`. */
export const ED25519_KEY_LABEL_PREFIX = "moat-ed25519-";
/** Label prefix of P-256 signing keys outside the CA: `moat-p256-<purpose>-<random>`. */
export const P256_KEY_LABEL_PREFIX = "moat-p256-";

/** The signature algorithms a PKCS#11 3.0 token offers for Moat's signing keys (no ML-DSA there). */
export type TokenSigningAlgorithm = "ed25519" | "ecdsa-p256";

const LOCATION = /^pkcs11:(.+)\/([^/]+)$/;
const PREFIXES: Record<TokenSigningAlgorithm, string> = { ed25519: ED25519_KEY_LABEL_PREFIX, "ecdsa-p256": P256_KEY_LABEL_PREFIX };
/** Length of the SubjectPublicKeyInfo header before a P-256 uncompressed point (RFC 5480 §2). */
const P256_SPKI_HEADER = 26;

/**
 * Signing keys generated inside the PKCS#11 token (the audit key and firmware keys with
 * keys.provider=pkcs11). The session opens on first use; keys are found again by their location
 * `pkcs11:<token>/<label>`, whose label prefix names the algorithm. Public keys come out raw:
 * Ed25519 as 32 bytes, P-256 as the 65-byte uncompressed point; P-256 signatures are r || s over SHA-256.
 */
export class TokenSigningKeyVault {
  private token: Pkcs11Token | null = null;

  constructor(private readonly config: Pkcs11Config) {}

  generate(purpose: string, alg: TokenSigningAlgorithm = "ed25519"): { publicKey: Buffer; location: string } {
    const token = this.open();
    // A random suffix: a failed attempt leaves an unused key behind, never one that blocks the next.
    const label = `${PREFIXES[alg]}${purpose}-${randomBytes(6).toString("hex")}`;
    const publicKey = alg === "ed25519" ? token.generateEd25519KeyPair(label).publicKey : p256Point(token.generateP256KeyPair(label).publicKey);
    return { publicKey, location: `pkcs11:${token.label}/${label}` };
  }

  signer(location: string): { alg: TokenSigningAlgorithm; publicKey: Buffer; sign(message: Buffer): Buffer } {
    const match = LOCATION.exec(location);
    const label = match?.[2] ?? "";
    const alg = (Object.keys(PREFIXES) as TokenSigningAlgorithm[]).find((a) => label.startsWith(PREFIXES[a]));
    if (!match || !alg) throw new MoatError("PKCS11_KEY_NOT_FOUND", `${JSON.stringify(location)} is not a Moat signing key location`);
    const token = this.open();
    if (match[1] !== token.label) throw new MoatError("PKCS11_TOKEN_NOT_FOUND", `the key is in token '${match[1]}', but the configured token is '${token.label}'`);
    const privateKey = token.find("private", label).find((o) => o.label === label);
    const publicObject = token.find("public", label).find((o) => o.label === label && (!privateKey || o.id.equals(privateKey.id)));
    if (!privateKey || !publicObject) throw new MoatError("PKCS11_KEY_NOT_FOUND", `token '${token.label}' holds no key '${label}'`);
    if (alg === "ed25519") return { alg, publicKey: token.ed25519PublicKey(publicObject.handle), sign: (message) => token.signEd25519(privateKey.handle, message) };
    return { alg, publicKey: p256Point(token.p256PublicKey(publicObject.handle)), sign: (message) => token.signEcdsaSha256(privateKey.handle, message) };
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

function p256Point(publicKey: import("node:crypto").KeyObject): Buffer {
  return publicKey.export({ format: "der", type: "spki" }).subarray(P256_SPKI_HEADER);
}
