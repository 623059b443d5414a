import { randomBytes } from "node:crypto";
import { ecdsaRawToDer } from "../crypto/index.js";
import { MoatError } from "../errors.js";
import type { CaKeySigner } from "./ca-signer.js";
import type { Kek, KekProvider, KekVersionInfo } from "./kek.js";
import { Pkcs11Token, type TokenObject } from "./pkcs11-token.js";

/** Label of KEK version N in the token: `moat-kek-v<N>`. */
export const KEK_LABEL_PREFIX = "moat-kek-v";
/** Label prefix of CA signing keys: `moat-ca-<name>`. */
export const CA_KEY_LABEL_PREFIX = "moat-ca-";

const NONCE = 12;
const TAG = 16;
/** How long a listing of the token's KEK versions is trusted before it is read again (another process may rotate). */
const REFRESH_MS = 2000;

interface VersionEntry {
  kek: Kek;
  object: TokenObject;
}

/**
 * KEK provider whose KEKs are non-extractable AES-256 keys inside a PKCS#11 token. Data keys are
 * wrapped and unwrapped by AES-GCM inside the token (the wrapped form is nonce || ciphertext || tag,
 * the same layout as the software KEK); the KEK bytes never exist in this process.
 */
export class Pkcs11KekProvider implements KekProvider {
  readonly kind = "pkcs11";
  private entries: VersionEntry[] = [];
  private listedAt = 0;

  constructor(private readonly token: Pkcs11Token) {}

  /** Opens the token and, when `create` is set and it holds no KEK yet, generates version 1. */
  static open(token: Pkcs11Token, options: { create?: boolean } = {}): Pkcs11KekProvider {
    const provider = new Pkcs11KekProvider(token);
    provider.list();
    if (provider.entries.length === 0) {
      if (!options.create) throw new MoatError("PKCS11_KEY_NOT_FOUND", `token '${token.label}' holds no Moat KEK (${KEK_LABEL_PREFIX}<N>); run moat init with keys.provider=pkcs11`);
      provider.generate(1);
    }
    return provider;
  }

  async current(): Promise<Kek> {
    this.refreshIfStale();
    const latest = this.entries.at(-1);
    if (!latest) throw new MoatError("PKCS11_KEY_NOT_FOUND", `token '${this.token.label}' holds no Moat KEK`);
    return latest.kek;
  }

  async get(id: string, version: number): Promise<Kek> {
    let entry = this.find(id, version);
    if (!entry) {
      this.list();
      entry = this.find(id, version);
    }
    if (!entry) throw new MoatError("KEK_MISMATCH", `this envelope was wrapped by KEK ${id} v${version}, which token '${this.token.label}' does not hold`);
    return entry.kek;
  }

  async createVersion(): Promise<Kek> {
    this.list();
    return this.generate((this.entries.at(-1)?.kek.version ?? 0) + 1).kek;
  }

  async versions(): Promise<KekVersionInfo[]> {
    this.list();
    const latest = this.entries.at(-1);
    return this.entries.map(({ kek }) => ({ id: kek.id, version: kek.version, current: kek === latest?.kek, location: `pkcs11:${this.token.label}/${KEK_LABEL_PREFIX}${kek.version}` }));
  }

  async retire(id: string, version: number): Promise<void> {
    this.list();
    const entry = this.find(id, version);
    if (!entry) return;
    if (entry === this.entries.at(-1)) throw new MoatError("KEK_VERSION_IN_USE", `KEK v${version} is the current version and cannot be retired`);
    this.token.destroy(entry.object.handle);
    this.list();
  }

  async refresh(): Promise<void> {
    this.list();
  }

  async close(): Promise<void> {
    this.token.close();
  }

  private find(id: string, version: number): VersionEntry | undefined {
    return this.entries.find((entry) => entry.kek.id === id && entry.kek.version === version);
  }

  private refreshIfStale(): void {
    if (Date.now() - this.listedAt > REFRESH_MS) this.list();
  }

  private list(): void {
    const objects = this.token.find("secret", KEK_LABEL_PREFIX);
    const entries: VersionEntry[] = [];
    for (const object of objects) {
      const version = Number(object.label.slice(KEK_LABEL_PREFIX.length));
      if (!Number.isSafeInteger(version) || version < 1) continue;
      entries.push({ object, kek: this.kekFor(object, version) });
    }
    entries.sort((a, b) => a.kek.version - b.kek.version);
    this.entries = entries;
    this.listedAt = Date.now();
  }

  private generate(version: number): VersionEntry {
    const object = this.token.generateAesKey(`${KEK_LABEL_PREFIX}${version}`);
    const entry = { object, kek: this.kekFor(object, version) };
    this.list();
    return entry;
  }

  private kekFor(object: TokenObject, version: number): Kek {
    const token = this.token;
    return {
      id: `p11:${object.id.toString("hex")}`,
      version,
      async wrap(dataKey, aad) {
        const nonce = randomBytes(NONCE);
        return Buffer.concat([nonce, token.encryptGcm(object.handle, nonce, aad, dataKey)]);
      },
      async unwrap(wrapped, aad) {
        if (wrapped.length < NONCE + TAG + 1) throw new MoatError("ENVELOPE_MALFORMED", "wrapped data key is too short");
        const dek = token.decryptGcm(object.handle, wrapped.subarray(0, NONCE), aad, wrapped.subarray(NONCE));
        if (!dek) throw new MoatError("ENVELOPE_DECRYPT_FAILED", "the data key did not unwrap in the token: wrong KEK or tampered envelope");
        return dek;
      },
    };
  }
}

/** Generates a CA signing key (P-256) inside the token, labelled `moat-ca-<name>`; refuses to replace one. */
export function createTokenCaKey(token: Pkcs11Token, name: string): CaKeySigner {
  const label = CA_KEY_LABEL_PREFIX + name;
  if (token.find("private", label).some((object) => object.label === label))
    throw new MoatError("DATA_DIR_ALREADY_INITIALIZED", `token '${token.label}' already holds a CA key '${label}'; nothing was generated`);
  const pair = token.generateP256KeyPair(label);
  return tokenSigner(token, pair.privateKey, pair.publicKey);
}

/** The CA signing key `moat-ca-<name>` already in the token. */
export function loadTokenCaKey(token: Pkcs11Token, name: string): CaKeySigner {
  const label = CA_KEY_LABEL_PREFIX + name;
  const privateKey = token.find("private", label).find((object) => object.label === label);
  const publicObject = token.find("public", label).find((object) => object.label === label && (!privateKey || object.id.equals(privateKey.id)));
  if (!privateKey || !publicObject) throw new MoatError("PKCS11_KEY_NOT_FOUND", `token '${token.label}' holds no CA key '${label}'`);
  return tokenSigner(token, privateKey, token.p256PublicKey(publicObject.handle));
}

function tokenSigner(token: Pkcs11Token, privateKey: TokenObject, publicKey: CaKeySigner["publicKey"]): CaKeySigner {
  return {
    keyType: "ec-p256",
    publicKey,
    location: `pkcs11:${token.label}/${privateKey.label}`,
    async sign(data) {
      return ecdsaRawToDer(token.signEcdsaSha256(privateKey.handle, data));
    },
    signSync(data) {
      return ecdsaRawToDer(token.signEcdsaSha256(privateKey.handle, data));
    },
  };
}
