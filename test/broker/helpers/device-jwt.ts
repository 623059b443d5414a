import { SignJWT } from "jose";

/** A device JWT as a device makes one for its MQTT password (RFC 7519 claims the broker checks). */
export function deviceJwt(key: Parameters<SignJWT["sign"]>[0], alg: string, claims: { sub: string; aud: string; iat: number; exp: number }): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg }).setSubject(claims.sub).setAudience(claims.aud).setIssuedAt(claims.iat).setExpirationTime(claims.exp).sign(key);
}
