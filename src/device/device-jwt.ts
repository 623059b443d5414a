// Device-signed JWTs (RFC 7519, ES256) for the broker's token login: username = device id, password =
// the token. For devices that cannot present a client certificate (a key in a PKCS#11 token, which
// Node's TLS cannot use; a TLS-terminating proxy). The broker verifies the signature with the public
// key of the device's certificate or a registered one (docs/broker.md, Device authentication), and
// ends the session when the token expires, so the SDK reconnects with a fresh token before that.
import { randomBytes } from "node:crypto";
import { ecdsaDerToRaw } from "../crypto/index.js";
import type { DeviceKey } from "./device-key.js";

export interface DeviceTokenOptions {
  deviceId: string;
  /** The broker's expected audience (`broker.audience`, advertised by GET /v1/info). */
  audience: string;
  /** Token lifetime, seconds (the broker's maximum is `maxTokenLifetimeSeconds`, 24 h by default). */
  lifetimeSeconds: number;
  now?: number;
}

const base64url = (value: Buffer | string): string => Buffer.from(value).toString("base64url");

/** A compact JWS: {alg: ES256, typ: JWT} . {sub, aud, iat, exp, jti} . r||s signature. */
export function deviceToken(key: DeviceKey, options: DeviceTokenOptions): { token: string; expiresAt: number } {
  const iat = Math.floor((options.now ?? Date.now()) / 1000);
  const exp = iat + options.lifetimeSeconds;
  const header = base64url(JSON.stringify({ alg: "ES256", typ: "JWT" }));
  const payload = base64url(JSON.stringify({ sub: options.deviceId, aud: options.audience, iat, exp, jti: randomBytes(12).toString("base64url") }));
  const signingInput = `${header}.${payload}`;
  // JWS carries ECDSA signatures as r || s (RFC 7518 §3.4), not DER.
  const signature = ecdsaDerToRaw(key.signDerSync(Buffer.from(signingInput, "ascii")), 32);
  return { token: `${signingInput}.${base64url(signature)}`, expiresAt: exp * 1000 };
}
