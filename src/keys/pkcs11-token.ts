import { createHash, createPublicKey, randomBytes, type KeyObject } from "node:crypto";
import { createRequire } from "node:module";
import type * as Pkcs11Js from "pkcs11js";
import { MoatError, type ErrorCode } from "../errors.js";

/** The native addon, loaded with the first token opened: installations without PKCS#11 never load it. */
let addon: typeof Pkcs11Js | undefined;
function p11(): typeof Pkcs11Js {
  return (addon ??= createRequire(import.meta.url)("pkcs11js") as typeof Pkcs11Js);
}

/** Where the token is and how to log in. The PIN is read from a file or the environment by config, never a flag. */
export interface Pkcs11Config {
  /** Path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  modulePath: string;
  /** Token label (preferred) or slot id. */
  tokenLabel?: string | null;
  slot?: number | null;
  /** Returns the user PIN; called once at login. */
  pin: () => string;
}

type Handle = Buffer;

/** One loaded module per path: C_Initialize may run only once per process (PKCS#11 v2.40 §5.4). */
const modules = new Map<string, { lib: Pkcs11Js.PKCS11; users: number }>();

function acquireModule(path: string): Pkcs11Js.PKCS11 {
  const existing = modules.get(path);
  if (existing) {
    existing.users += 1;
    return existing.lib;
  }
  const lib = new (p11().PKCS11)();
  try {
    lib.load(path);
    lib.C_Initialize({ flags: p11().CKF_OS_LOCKING_OK });
  } catch (error) {
    throw new MoatError("PKCS11_MODULE_FAILED", `the PKCS#11 module ${path} could not be loaded or initialised: ${(error as Error).message}`, { cause: error });
  }
  modules.set(path, { lib, users: 1 });
  return lib;
}

function releaseModule(path: string): void {
  const entry = modules.get(path);
  if (!entry) return;
  entry.users -= 1;
  if (entry.users > 0) return;
  modules.delete(path);
  try {
    entry.lib.C_Finalize();
  } finally {
    entry.lib.close();
  }
}

function p11Error(code: ErrorCode, what: string, error: unknown): MoatError {
  return new MoatError(code, `PKCS#11 ${what} failed: ${(error as Error).message}`, { cause: error });
}

const P256_OID_DER = Buffer.from("06082a8648ce3d030107", "hex");
/** SubjectPublicKeyInfo prefix for an uncompressed P-256 point (RFC 5480 §2). */
const P256_SPKI_PREFIX = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d030107034200", "hex");

/** Ed25519 in PKCS#11 3.0 (not in pkcs11js's constants): key generation, signing, the curve's OID 1.3.101.112. */
const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
const CKM_EDDSA = 0x1057;
const ED25519_OID_DER = Buffer.from("06032b6570", "hex");

/** The object attributes Moat reads back. */
export interface TokenObject {
  handle: Handle;
  label: string;
  id: Buffer;
}

/**
 * A logged-in session on one token. Every key Moat creates here is a token object that is
 * sensitive and non-extractable: wrapping, unwrapping and signing happen inside the token.
 */
export class Pkcs11Token {
  private closed = false;

  private constructor(
    private readonly lib: Pkcs11Js.PKCS11,
    private readonly modulePath: string,
    private readonly session: Handle,
    /** The token's label as configured (trimmed). */
    readonly label: string,
    readonly serial: string,
  ) {}

  /** Loads the module, finds the token by label or slot, opens a read-write session and logs in. */
  static open(config: Pkcs11Config): Pkcs11Token {
    const lib = acquireModule(config.modulePath);
    try {
      const { slot, label, serial } = findSlot(lib, config);
      const session = lib.C_OpenSession(slot, p11().CKF_SERIAL_SESSION | p11().CKF_RW_SESSION);
      try {
        const pin = config.pin();
        if (!pin) throw new MoatError("PKCS11_PIN_MISSING", "the PKCS#11 PIN source is empty");
        try {
          lib.C_Login(session, p11().CKU_USER, pin);
        } catch (error) {
          // Another session of this process may already be logged in (login state is per token).
          if ((error as { code?: number }).code !== p11().CKR_USER_ALREADY_LOGGED_IN) throw p11Error("PKCS11_LOGIN_FAILED", `login to token '${label}'`, error);
        }
        return new Pkcs11Token(lib, config.modulePath, session, label, serial);
      } catch (error) {
        lib.C_CloseSession(session);
        throw error;
      }
    } catch (error) {
      releaseModule(config.modulePath);
      if (error instanceof MoatError) throw error;
      throw p11Error("PKCS11_OPERATION_FAILED", "opening the token session", error);
    }
  }

  /** Finds objects of a class whose label starts with `labelPrefix`. */
  find(objectClass: "secret" | "private" | "public", labelPrefix: string): TokenObject[] {
    const cls = objectClass === "secret" ? p11().CKO_SECRET_KEY : objectClass === "private" ? p11().CKO_PRIVATE_KEY : p11().CKO_PUBLIC_KEY;
    const found: TokenObject[] = [];
    this.call("object search", () => {
      this.lib.C_FindObjectsInit(this.session, [{ type: p11().CKA_CLASS, value: cls }]);
      try {
        for (;;) {
          const batch = this.lib.C_FindObjects(this.session, 64);
          if (batch.length === 0) break;
          for (const handle of batch) {
            const [label, id] = this.lib.C_GetAttributeValue(this.session, handle, [{ type: p11().CKA_LABEL }, { type: p11().CKA_ID }]);
            const text = (label?.value as Buffer | undefined)?.toString("utf8") ?? "";
            if (text.startsWith(labelPrefix)) found.push({ handle, label: text, id: Buffer.from((id?.value as Buffer | undefined) ?? Buffer.alloc(0)) });
          }
        }
      } finally {
        this.lib.C_FindObjectsFinal(this.session);
      }
    });
    return found;
  }

  /** Generates a non-extractable AES-256 key in the token (a KEK). */
  generateAesKey(label: string): TokenObject {
    const id = randomBytes(8);
    const handle = this.call("AES key generation", () =>
      this.lib.C_GenerateKey(this.session, { mechanism: p11().CKM_AES_KEY_GEN }, [
        { type: p11().CKA_CLASS, value: p11().CKO_SECRET_KEY },
        { type: p11().CKA_KEY_TYPE, value: p11().CKK_AES },
        { type: p11().CKA_VALUE_LEN, value: 32 },
        { type: p11().CKA_TOKEN, value: true },
        { type: p11().CKA_PRIVATE, value: true },
        { type: p11().CKA_SENSITIVE, value: true },
        { type: p11().CKA_EXTRACTABLE, value: false },
        { type: p11().CKA_ENCRYPT, value: true },
        { type: p11().CKA_DECRYPT, value: true },
        { type: p11().CKA_LABEL, value: label },
        { type: p11().CKA_ID, value: id },
      ]),
    );
    return { handle, label, id };
  }

  /** AES-256-GCM encryption inside the token: returns ciphertext || 16-byte tag. */
  encryptGcm(key: Handle, iv: Buffer, aad: Buffer, plaintext: Buffer): Buffer {
    return this.call("AES-GCM encryption", () => {
      this.lib.C_EncryptInit(this.session, gcm(iv, aad), key);
      return Buffer.from(this.lib.C_Encrypt(this.session, plaintext, Buffer.alloc(plaintext.length + 16)));
    });
  }

  /** AES-256-GCM decryption inside the token; null when the tag does not verify. */
  decryptGcm(key: Handle, iv: Buffer, aad: Buffer, sealed: Buffer): Buffer | null {
    this.assertOpen();
    try {
      this.lib.C_DecryptInit(this.session, gcm(iv, aad), key);
      return Buffer.from(this.lib.C_Decrypt(this.session, sealed, Buffer.alloc(sealed.length)));
    } catch {
      // SoftHSM reports a bad tag as CKR_GENERAL_ERROR, others as CKR_ENCRYPTED_DATA_INVALID: both mean "does not open".
      return null;
    }
  }

  /** Generates a P-256 key pair; the private half is sensitive, non-extractable and can only sign. */
  generateP256KeyPair(label: string): { privateKey: TokenObject; publicKey: KeyObject } {
    const pair = this.generateSigningKeyPair("EC key generation", p11().CKM_EC_KEY_PAIR_GEN, P256_OID_DER, label);
    return { privateKey: pair.privateKey, publicKey: this.p256PublicKey(pair.publicKey) };
  }

  /**
   * An EC-family signing key pair on the token: the public half may only verify, the private half is
   * private, sensitive, non-extractable and may only sign. Both halves share a fresh CKA_ID and the label.
   */
  private generateSigningKeyPair(what: string, mechanism: number, ecParams: Buffer, label: string): { privateKey: TokenObject; publicKey: Handle } {
    const id = randomBytes(8);
    const pair = this.call(what, () =>
      this.lib.C_GenerateKeyPair(
        this.session,
        { mechanism },
        [
          { type: p11().CKA_TOKEN, value: true },
          { type: p11().CKA_VERIFY, value: true },
          { type: p11().CKA_EC_PARAMS, value: ecParams },
          { type: p11().CKA_LABEL, value: label },
          { type: p11().CKA_ID, value: id },
        ],
        [
          { type: p11().CKA_TOKEN, value: true },
          { type: p11().CKA_PRIVATE, value: true },
          { type: p11().CKA_SIGN, value: true },
          { type: p11().CKA_SENSITIVE, value: true },
          { type: p11().CKA_EXTRACTABLE, value: false },
          { type: p11().CKA_LABEL, value: label },
          { type: p11().CKA_ID, value: id },
        ],
      ),
    );
    return { privateKey: { handle: pair.privateKey, label, id }, publicKey: pair.publicKey };
  }

  /** The public key object of a P-256 pair as a node KeyObject. */
  p256PublicKey(handle: Handle): KeyObject {
    const [point] = this.call("public key read", () => this.lib.C_GetAttributeValue(this.session, handle, [{ type: p11().CKA_EC_POINT }]));
    const der = point?.value as Buffer | undefined;
    // CKA_EC_POINT is a DER OCTET STRING wrapping the uncompressed point 04||X||Y (65 bytes).
    if (!der || der.length !== 67 || der[0] !== 0x04 || der[1] !== 65 || der[2] !== 0x04)
      throw new MoatError("PKCS11_OPERATION_FAILED", "the token's EC public key is not an uncompressed P-256 point");
    return createPublicKey({ key: Buffer.concat([P256_SPKI_PREFIX, der.subarray(2)]), format: "der", type: "spki" });
  }

  /**
   * ECDSA P-256 over SHA-256 of `data`. SoftHSM 2.6 lacks CKM_ECDSA_SHA256, so the digest is
   * computed here and the token signs it with CKM_ECDSA; the result is r || s (64 bytes).
   */
  signEcdsaSha256(key: Handle, data: Buffer): Buffer {
    const digest = createHash("sha256").update(data).digest();
    return this.call("ECDSA signing", () => {
      this.lib.C_SignInit(this.session, { mechanism: p11().CKM_ECDSA }, key);
      return Buffer.from(this.lib.C_Sign(this.session, digest, Buffer.alloc(132)));
    });
  }

  /**
   * Generates an Ed25519 key pair (CKM_EC_EDWARDS_KEY_PAIR_GEN with the curve named by OID
   * 1.3.101.112); the private half is sensitive, non-extractable and can only sign.
   */
  generateEd25519KeyPair(label: string): { privateKey: TokenObject; publicKey: Buffer } {
    const pair = this.generateSigningKeyPair("Ed25519 key generation", CKM_EC_EDWARDS_KEY_PAIR_GEN, ED25519_OID_DER, label);
    return { privateKey: pair.privateKey, publicKey: this.ed25519PublicKey(pair.publicKey) };
  }

  /** The raw 32-byte Ed25519 public key of a token public-key object. */
  ed25519PublicKey(handle: Handle): Buffer {
    const [point] = this.call("public key read", () => this.lib.C_GetAttributeValue(this.session, handle, [{ type: p11().CKA_EC_POINT }]));
    const value = point?.value as Buffer | undefined;
    // PKCS#11 3.0 says CKA_EC_POINT is the DER OCTET STRING of the 32-byte key; some tokens give the bare key.
    if (value?.length === 34 && value[0] === 0x04 && value[1] === 32) return Buffer.from(value.subarray(2));
    if (value?.length === 32) return Buffer.from(value);
    throw new MoatError("PKCS11_OPERATION_FAILED", "the token's Ed25519 public key is not 32 bytes");
  }

  /** Pure Ed25519 (CKM_EDDSA without parameters) over `data`: a 64-byte signature. */
  signEd25519(key: Handle, data: Buffer): Buffer {
    return this.call("Ed25519 signing", () => {
      this.lib.C_SignInit(this.session, { mechanism: CKM_EDDSA }, key);
      return Buffer.from(this.lib.C_Sign(this.session, data, Buffer.alloc(64)));
    });
  }

  /** Reads CKA_EXTRACTABLE / CKA_SENSITIVE, for checks and `moat keys status`. */
  protection(handle: Handle): { extractable: boolean; sensitive: boolean } {
    const [extractable, sensitive] = this.call("attribute read", () =>
      this.lib.C_GetAttributeValue(this.session, handle, [{ type: p11().CKA_EXTRACTABLE }, { type: p11().CKA_SENSITIVE }]),
    );
    const flag = (value: unknown) => (Buffer.isBuffer(value) ? value[0] === 1 : value === true);
    return { extractable: flag(extractable?.value), sensitive: flag(sensitive?.value) };
  }

  /** Tries to read a key's value; returns true only if the token hands it out (it must not). */
  valueIsReadable(handle: Handle): boolean {
    try {
      const [value] = this.lib.C_GetAttributeValue(this.session, handle, [{ type: p11().CKA_VALUE }]);
      return Buffer.isBuffer(value?.value) && value.value.length > 0;
    } catch {
      return false;
    }
  }

  destroy(handle: Handle): void {
    this.call("object deletion", () => this.lib.C_DestroyObject(this.session, handle));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.lib.C_CloseSession(this.session);
    } finally {
      releaseModule(this.modulePath);
    }
  }

  private call<T>(what: string, fn: () => T): T {
    this.assertOpen();
    try {
      return fn();
    } catch (error) {
      if (error instanceof MoatError) throw error;
      throw p11Error("PKCS11_OPERATION_FAILED", what, error);
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new MoatError("PKCS11_OPERATION_FAILED", "the PKCS#11 session is closed");
  }
}

function gcm(iv: Buffer, aad: Buffer): Pkcs11Js.Mechanism {
  return { mechanism: p11().CKM_AES_GCM, parameter: { type: p11().CK_PARAMS_AES_GCM, iv, aad, ivBits: 96, tagBits: 128 } as Pkcs11Js.AesGCM };
}

function findSlot(lib: Pkcs11Js.PKCS11, config: Pkcs11Config): { slot: Handle; label: string; serial: string } {
  const wanted = config.tokenLabel?.trim();
  if (!wanted && (config.slot === undefined || config.slot === null))
    throw new MoatError("PKCS11_TOKEN_NOT_FOUND", "configure keys.pkcs11TokenLabel or keys.pkcs11Slot to pick the token");
  const seen: string[] = [];
  for (const slot of lib.C_GetSlotList(true)) {
    const info = lib.C_GetTokenInfo(slot);
    const label = info.label.trim();
    seen.push(label);
    const slotId = slot.readUInt32LE(0);
    if (wanted ? label === wanted : slotId === config.slot) return { slot, label, serial: info.serialNumber.trim() };
  }
  throw new MoatError("PKCS11_TOKEN_NOT_FOUND", `no token ${wanted ? `labelled '${wanted}'` : `in slot ${config.slot}`} (tokens present: ${seen.map((s) => `'${s}'`).join(", ") || "none"})`);
}
