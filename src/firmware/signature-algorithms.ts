import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from "node:crypto";
import { ml_dsa65 } from "@noble/post-quantum/ml-dsa.js";
import { MoatError } from "../errors.js";

/** The allow-list of firmware signature algorithms. Anything else is refused by name. */
export const SIGNATURE_ALGORITHMS = ["ed25519", "ecdsa-p256", "hybrid-ed25519-mldsa65"] as const;
export type SignatureAlgorithm = (typeof SIGNATURE_ALGORITHMS)[number];

/** Raw key material. Public keys are the raw encodings below; private keys are seeds or PKCS#8. */
export interface KeyPairBytes {
  alg: SignatureAlgorithm;
  publicKey: Buffer;
  privateKey: Buffer;
}

// Encodings (fixed lengths so a truncated or padded key or signature is refused up front):
//   ed25519   public 32-byte raw key (RFC 8032 §5.1.5), private 32-byte seed, signature 64 bytes
//   ecdsa-p256 public 65-byte uncompressed point (SEC 1 §2.3.3), private PKCS#8 DER,
//              signature r||s 64 bytes (IEEE P1363) over SHA-256
//   hybrid    public ed25519(32) || ML-DSA-65(1952), private ed25519 seed(32) || ML-DSA seed(32),
//              signature ed25519(64) || ML-DSA-65(3309) (FIPS 204 Table 2)
const ED25519_PUBLIC = 32;
const ED25519_SIG = 64;
const P256_PUBLIC = 65;
const P256_SIG = 64;
const MLDSA_PUBLIC = 1952;
const MLDSA_SIG = 3309;
const SEED = 32;
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const ED25519_PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const P256_SPKI_PREFIX = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d030107034200", "hex");

/**
 * Both halves of a hybrid signature sign a message bound to the hybrid algorithm, so the Ed25519 half
 * cannot be lifted out and presented as a plain Ed25519 signature (the stripping attack that
 * draft-ietf-lamps-pq-composite-sigs prevents with its own prefix). ML-DSA also gets a FIPS 204
 * context string for domain separation.
 */
const HYBRID_PREFIX = Buffer.from("moat/hybrid-ed25519-mldsa65/v1\0", "utf8");
const MLDSA_CONTEXT = new TextEncoder().encode("moat-firmware");

export function isSignatureAlgorithm(value: unknown): value is SignatureAlgorithm {
  return typeof value === "string" && (SIGNATURE_ALGORITHMS as readonly string[]).includes(value);
}

/** Narrows `value` to an allowed algorithm or throws `FIRMWARE_ALGORITHM_UNSUPPORTED`. */
export function assertSignatureAlgorithm(value: unknown): SignatureAlgorithm {
  if (!isSignatureAlgorithm(value))
    throw new MoatError("FIRMWARE_ALGORITHM_UNSUPPORTED", `algorithm ${JSON.stringify(value)} is not one of ${SIGNATURE_ALGORITHMS.join(", ")}`);
  return value;
}

/** Generates a fresh key pair for `alg`. */
export function generateKeyPair(alg: SignatureAlgorithm): KeyPairBytes {
  switch (alg) {
    case "ed25519": {
      const seed = randomBytes(SEED);
      return { alg, privateKey: seed, publicKey: ed25519PublicFromSeed(seed) };
    }
    case "ecdsa-p256": {
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const spki = publicKey.export({ format: "der", type: "spki" });
      return { alg, privateKey: privateKey.export({ format: "der", type: "pkcs8" }), publicKey: spki.subarray(P256_SPKI_PREFIX.length) };
    }
    case "hybrid-ed25519-mldsa65": {
      const edSeed = randomBytes(SEED);
      const pqSeed = randomBytes(SEED);
      const pq = ml_dsa65.keygen(pqSeed);
      return {
        alg,
        privateKey: Buffer.concat([edSeed, pqSeed]),
        publicKey: Buffer.concat([ed25519PublicFromSeed(edSeed), Buffer.from(pq.publicKey)]),
      };
    }
  }
}

/** Derives the public key of a stored private key (used to check a stored key still matches its record). */
export function publicKeyOf(alg: SignatureAlgorithm, privateKey: Uint8Array): Buffer {
  switch (alg) {
    case "ed25519":
      return ed25519PublicFromSeed(exact(privateKey, SEED, "ed25519 private key"));
    case "ecdsa-p256":
      return createPublicKey(p256Private(privateKey)).export({ format: "der", type: "spki" }).subarray(P256_SPKI_PREFIX.length);
    case "hybrid-ed25519-mldsa65": {
      const key = exact(privateKey, 2 * SEED, "hybrid private key");
      return Buffer.concat([ed25519PublicFromSeed(key.subarray(0, SEED)), Buffer.from(ml_dsa65.keygen(key.subarray(SEED)).publicKey)]);
    }
  }
}

/** Checks that a public key has the exact encoding `alg` expects; throws `FIRMWARE_KEY_MALFORMED`. */
export function assertPublicKey(alg: SignatureAlgorithm, publicKey: Uint8Array): void {
  switch (alg) {
    case "ed25519":
      exact(publicKey, ED25519_PUBLIC, "ed25519 public key");
      ed25519Public(publicKey);
      return;
    case "ecdsa-p256":
      exact(publicKey, P256_PUBLIC, "P-256 public key");
      p256Public(publicKey);
      return;
    case "hybrid-ed25519-mldsa65":
      exact(publicKey, ED25519_PUBLIC + MLDSA_PUBLIC, "hybrid public key");
      ed25519Public(publicKey.subarray(0, ED25519_PUBLIC));
      return;
  }
}

/** Signs `message` with a private key of `alg`. */
export function signMessage(alg: SignatureAlgorithm, privateKey: Uint8Array, message: Uint8Array): Buffer {
  switch (alg) {
    case "ed25519":
      return sign(null, message, ed25519Private(exact(privateKey, SEED, "ed25519 private key")));
    case "ecdsa-p256":
      return sign("sha256", message, { key: p256Private(privateKey), dsaEncoding: "ieee-p1363" });
    case "hybrid-ed25519-mldsa65": {
      const key = exact(privateKey, 2 * SEED, "hybrid private key");
      const bound = Buffer.concat([HYBRID_PREFIX, message]);
      const ed = sign(null, bound, ed25519Private(key.subarray(0, SEED)));
      const pq = ml_dsa65.sign(bound, mldsaSecret(key.subarray(SEED)), { context: MLDSA_CONTEXT });
      return Buffer.concat([ed, Buffer.from(pq)]);
    }
  }
}

/** Result of a signature check; `failed` names the component that did not verify (for hybrid). */
export interface SignatureCheck {
  valid: boolean;
  failed?: "ed25519" | "ml-dsa-65" | "ecdsa-p256" | "encoding";
}

/**
 * Verifies `signature` over `message`. A hybrid signature is valid only when BOTH the Ed25519 and
 * the ML-DSA-65 component verify: either one alone proves nothing (devices outlive today's curves).
 */
export function verifyMessage(alg: SignatureAlgorithm, publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): SignatureCheck {
  switch (alg) {
    case "ed25519":
      if (signature.length !== ED25519_SIG || publicKey.length !== ED25519_PUBLIC) return { valid: false, failed: "encoding" };
      return verify(null, message, ed25519Public(publicKey), signature) ? { valid: true } : { valid: false, failed: "ed25519" };
    case "ecdsa-p256":
      if (signature.length !== P256_SIG || publicKey.length !== P256_PUBLIC) return { valid: false, failed: "encoding" };
      return verify("sha256", message, { key: p256Public(publicKey), dsaEncoding: "ieee-p1363" }, signature)
        ? { valid: true }
        : { valid: false, failed: "ecdsa-p256" };
    case "hybrid-ed25519-mldsa65": {
      if (signature.length !== ED25519_SIG + MLDSA_SIG || publicKey.length !== ED25519_PUBLIC + MLDSA_PUBLIC)
        return { valid: false, failed: "encoding" };
      const bound = Buffer.concat([HYBRID_PREFIX, message]);
      // Both components are always checked (no early exit), so timing does not say which one failed.
      const edOk = verify(null, bound, ed25519Public(publicKey.subarray(0, ED25519_PUBLIC)), signature.subarray(0, ED25519_SIG));
      let pqOk = false;
      try {
        pqOk = ml_dsa65.verify(signature.subarray(ED25519_SIG), bound, publicKey.subarray(ED25519_PUBLIC), { context: MLDSA_CONTEXT });
      } catch {
        pqOk = false;
      }
      if (edOk && pqOk) return { valid: true };
      return { valid: false, failed: edOk ? "ml-dsa-65" : "ed25519" };
    }
  }
}

/** ML-DSA key expansion from the seed (FIPS 204 Algorithm 6) is as costly as a signature, so it is cached too. */
const mldsaCache = new Map<string, Uint8Array>();
function mldsaSecret(seed: Uint8Array): Uint8Array {
  const id = createHash("sha256").update(seed).digest("base64");
  const hit = mldsaCache.get(id);
  if (hit) return hit;
  const secret = ml_dsa65.keygen(seed).secretKey;
  if (mldsaCache.size >= 8) mldsaCache.delete(mldsaCache.keys().next().value!);
  mldsaCache.set(id, secret);
  return secret;
}

function exact(bytes: Uint8Array, length: number, what: string): Buffer {
  if (bytes.length !== length) throw new MoatError("FIRMWARE_KEY_MALFORMED", `${what} must be ${length} bytes, got ${bytes.length}`);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function ed25519PublicFromSeed(seed: Uint8Array): Buffer {
  return createPublicKey(ed25519Private(seed)).export({ format: "der", type: "spki" }).subarray(ED25519_SPKI_PREFIX.length);
}

/**
 * Parsed keys are cached: importing a DER key costs more than an Ed25519 signature. The cache is
 * small and keyed by a hash of the key bytes, so private key material is not kept as a map key.
 */
const KEY_CACHE_SIZE = 64;
const keyCache = new Map<string, KeyObject>();

function cached(kind: string, bytes: Uint8Array, parse: () => KeyObject): KeyObject {
  const id = `${kind}:${createHash("sha256").update(bytes).digest("base64")}`;
  const hit = keyCache.get(id);
  if (hit) return hit;
  const key = parse();
  if (keyCache.size >= KEY_CACHE_SIZE) keyCache.delete(keyCache.keys().next().value!);
  keyCache.set(id, key);
  return key;
}

function ed25519Private(seed: Uint8Array): KeyObject {
  return cached("ed-priv", seed, () => createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" }));
}

function ed25519Public(raw: Uint8Array): KeyObject {
  return cached("ed-pub", raw, () =>
    parseKey(() => createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: "der", type: "spki" }), "ed25519 public key"),
  );
}

function p256Public(point: Uint8Array): KeyObject {
  return cached("p256-pub", point, () =>
    parseKey(() => createPublicKey({ key: Buffer.concat([P256_SPKI_PREFIX, point]), format: "der", type: "spki" }), "P-256 public key"),
  );
}

function p256Private(pkcs8: Uint8Array): KeyObject {
  return cached("p256-priv", pkcs8, () => {
    const key = parseKey(() => createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" }), "P-256 private key");
    if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1")
      throw new MoatError("FIRMWARE_KEY_MALFORMED", "the ecdsa-p256 private key is not a P-256 key");
    return key;
  });
}

function parseKey(parse: () => KeyObject, what: string): KeyObject {
  try {
    return parse();
  } catch (cause) {
    throw new MoatError("FIRMWARE_KEY_MALFORMED", `${what} does not parse`, { cause });
  }
}
