/**
 * Device JWTs as MQTT passwords (username = device id, password = compact JWS, RFC 7519).
 *
 * Two credential kinds, each with its own algorithm allow-list so a key of one kind can never verify
 * a token of the other (algorithm confusion, RFC 8725 §2.1 and §3.1):
 * - device-signed: ES256 or EdDSA, verified with a public key of the device (its certificate's or a
 *   registered one);
 * - shared secret: HS256 with the device's own secret (the previous secret keeps working until its
 *   `notAfter`, the rotation grace period).
 * `alg: none` is never accepted; jose's `jwtVerify` refuses unsecured tokens and we never call the
 * unsecured API.
 */
import { createPublicKey, type KeyObject } from "node:crypto";
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from "jose";
import { publicKeyId, secretId } from "../crypto/index.js";
import type { DeviceRecord } from "./ports.js";

/** Algorithms per credential kind. `Ed25519` is the fully specified name for EdDSA over Ed25519 (RFC 9864). */
export const KEY_ALGORITHMS = ["ES256", "EdDSA", "Ed25519"] as const;
export const SECRET_ALGORITHMS = ["HS256"] as const;

export interface TokenCheckOptions {
  audience: string;
  clockSkewSeconds: number;
  maxLifetimeSeconds: number;
  maxTokenBytes: number;
  now?: () => number;
}

export type TokenMethod = "jwt-key" | "jwt-secret";

export interface TokenAccepted {
  ok: true;
  method: TokenMethod;
  /** Which credential verified it: a key id, or `secret:<sha256 prefix>`; never the secret. */
  credentialId: string;
  /** When the session must end: the token's `exp`, or earlier when the verifying secret's grace ends. */
  deadline: number;
}

export interface TokenRefused {
  ok: false;
  reason: TokenFailure;
  /** Non-secret detail for the `auth.failed` event. */
  detail?: string;
}

export type TokenFailure =
  | "token_malformed"
  | "token_too_large"
  | "token_alg_none"
  | "token_alg_not_allowed"
  | "token_no_credential"
  | "token_signature_invalid"
  | "token_secret_grace_expired"
  | "token_expired"
  | "token_not_yet_valid"
  | "token_wrong_audience"
  | "token_wrong_subject"
  | "token_claims_missing"
  | "token_lifetime_too_long"
  | "token_iat_invalid";

function keyMatchesAlgorithm(key: KeyObject, alg: string): boolean {
  if (alg === "ES256") return key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1";
  return key.asymmetricKeyType === "ed25519";
}

/** Maps a jose claim failure to a reason; a verified signature means the claim failure is genuine. */
function claimFailure(err: unknown): TokenRefused | null {
  if (err instanceof joseErrors.JWTExpired) return { ok: false, reason: err.claim === "iat" ? "token_iat_invalid" : "token_expired" };
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.reason === "missing") return { ok: false, reason: "token_claims_missing", detail: err.claim };
    switch (err.claim) {
      case "aud":
        return { ok: false, reason: "token_wrong_audience" };
      case "sub":
        return { ok: false, reason: "token_wrong_subject" };
      case "nbf":
        return { ok: false, reason: "token_not_yet_valid" };
      case "iat":
        return { ok: false, reason: "token_iat_invalid" };
      default:
        return { ok: false, reason: "token_malformed", detail: err.claim };
    }
  }
  if (err instanceof joseErrors.JWTInvalid) return { ok: false, reason: "token_malformed", detail: err.message };
  return null;
}

function isSignatureFailure(err: unknown): boolean {
  return err instanceof joseErrors.JWSSignatureVerificationFailed;
}

/**
 * Verifies `token` for `device`. The subject must be the device id, the audience the broker's, `iat`
 * and `exp` present with `exp - iat` within the allowed lifetime, all within the clock skew.
 */
export async function verifyDeviceToken(token: string, device: DeviceRecord, options: TokenCheckOptions): Promise<TokenAccepted | TokenRefused> {
  if (Buffer.byteLength(token) > options.maxTokenBytes) return { ok: false, reason: "token_too_large" };
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/.test(token)) return { ok: false, reason: "token_malformed" };
  let alg: string;
  try {
    const header = decodeProtectedHeader(token);
    alg = typeof header.alg === "string" ? header.alg : "";
  } catch {
    return { ok: false, reason: "token_malformed" };
  }
  if (alg.toLowerCase() === "none") return { ok: false, reason: "token_alg_none" };
  const now = options.now ?? Date.now;
  const verifyOptions = {
    audience: options.audience,
    subject: device.id,
    requiredClaims: ["iat", "exp"],
    clockTolerance: options.clockSkewSeconds,
    // Bounds how old `iat` may be and refuses `iat` in the future (beyond the skew).
    maxTokenAge: options.maxLifetimeSeconds + options.clockSkewSeconds,
    currentDate: new Date(now()),
  };

  const checkLifetime = (payload: JWTPayload): TokenRefused | null => {
    const { iat, exp } = payload;
    if (typeof iat !== "number" || typeof exp !== "number") return { ok: false, reason: "token_claims_missing" };
    if (exp - iat > options.maxLifetimeSeconds) return { ok: false, reason: "token_lifetime_too_long" };
    return null;
  };

  if ((SECRET_ALGORITHMS as readonly string[]).includes(alg)) {
    let graceExpired = false;
    for (const { secret, notAfter } of device.hmacSecrets) {
      const expiry = notAfter === null ? Infinity : Date.parse(notAfter);
      try {
        const { payload } = await jwtVerify(token, secret, { ...verifyOptions, algorithms: [...SECRET_ALGORITHMS] });
        if (expiry <= now()) {
          // The signature is right but the secret was rotated out and its grace is over.
          graceExpired = true;
          continue;
        }
        const lifetime = checkLifetime(payload);
        if (lifetime) return lifetime;
        return { ok: true, method: "jwt-secret", credentialId: secretId(secret), deadline: Math.min((payload.exp as number) * 1000, expiry) };
      } catch (err) {
        if (isSignatureFailure(err)) continue;
        const failure = claimFailure(err);
        if (failure) return expiry <= now() ? { ok: false, reason: "token_secret_grace_expired" } : failure;
        return { ok: false, reason: "token_malformed" };
      }
    }
    if (graceExpired) return { ok: false, reason: "token_secret_grace_expired" };
    return { ok: false, reason: device.hmacSecrets.length === 0 ? "token_no_credential" : "token_signature_invalid" };
  }

  if ((KEY_ALGORITHMS as readonly string[]).includes(alg)) {
    let candidates = 0;
    for (const registered of device.publicKeys) {
      let key: KeyObject;
      try {
        key = createPublicKey(registered.pem);
      } catch {
        continue;
      }
      if (!keyMatchesAlgorithm(key, alg)) continue;
      candidates += 1;
      try {
        const { payload } = await jwtVerify(token, key, { ...verifyOptions, algorithms: [alg] });
        const lifetime = checkLifetime(payload);
        if (lifetime) return lifetime;
        return { ok: true, method: "jwt-key", credentialId: registered.id ?? publicKeyId(key), deadline: (payload.exp as number) * 1000 };
      } catch (err) {
        if (isSignatureFailure(err)) continue;
        return claimFailure(err) ?? { ok: false, reason: "token_malformed" };
      }
    }
    return { ok: false, reason: candidates === 0 ? "token_no_credential" : "token_signature_invalid" };
  }

  return { ok: false, reason: "token_alg_not_allowed", detail: alg.slice(0, 20) };
}
