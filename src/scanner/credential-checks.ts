/**
 * Default-credential attempts over Telnet, HTTP Basic and MQTT. Each service first gets a control
 * attempt with a random user name and password: a service that lets that in accepts anything, and
 * a default login "working" there would prove nothing. Then defaults are tried one connection each,
 * stopping at the first that works or at the per-service budget.
 */
import { randomBytes } from "node:crypto";
import { DEFAULT_CREDENTIALS, type Credential } from "./default-credentials.js";
import { httpBasicStatus } from "./http-probe.js";
import { mqttConnectCode } from "./mqtt-probe.js";
import { permissiveTls, type Endpoint, type ProbeContext } from "./probe-context.js";
import { telnetLogin } from "./telnet-probe.js";
import type { CredentialCheck, ServiceInfo } from "./types.js";

type Attempt = (credential: Credential) => Promise<boolean>;

/** Which login to test on this service, or null when it has none the scanner can try. */
export function credentialTarget(service: ServiceInfo): CredentialCheck["service"] | null {
  if (service.name === "telnet") return "telnet";
  // Only a server that challenges for Basic (401 + WWW-Authenticate: Basic) has a login to test.
  if (service.name === "http" && service.http?.status === 401 && service.http.basicRealm !== undefined) return "http";
  // 4 = bad user name or password, 5 = not authorised: the broker wants credentials.
  if (service.name === "mqtt" && (service.mqtt?.anonymousReturnCode === 4 || service.mqtt?.anonymousReturnCode === 5)) return "mqtt";
  return null;
}

/** Runs the control attempt and up to `maxAttempts - 1` default logins. */
export async function checkDefaultCredentials(
  ctx: ProbeContext,
  target: { address: string; port: number; hostname?: string },
  service: ServiceInfo,
  maxAttempts: number,
): Promise<CredentialCheck | null> {
  const kind = credentialTarget(service);
  if (!kind) return null;
  const endpoint: Endpoint = { ...target, ...(service.overTls ? { tls: permissiveTls(target) } : {}) };
  const attempt: Attempt =
    kind === "telnet"
      ? async (c) => (await telnetLogin(ctx, endpoint, c.username, c.password)) === "accepted"
      : kind === "http"
        ? async (c) => {
            const status = await httpBasicStatus(ctx, endpoint, c.username, c.password);
            return status !== null && status < 400;
          }
        : async (c) => (await mqttConnectCode(ctx, endpoint, c)) === 0;

  const control: Credential = { username: `moat-${randomBytes(4).toString("hex")}`, password: randomBytes(12).toString("base64url") };
  const check: CredentialCheck = { service: kind, attempts: 1 };
  if (await attempt(control)) return { ...check, acceptsAnything: true };
  for (const credential of DEFAULT_CREDENTIALS) {
    if (check.attempts >= maxAttempts || ctx.signal.aborted) break;
    check.attempts++;
    if (await attempt(credential)) return { ...check, accepted: { ...credential } };
  }
  return check;
}
