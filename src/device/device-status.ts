// The device's question to its server when the broker refuses or drops it: "what do you hold about
// me?" (GET /v1/device/status, authenticated by the certificate itself over mTLS). The broker answers
// every refusal with the same CONNACK code, so this is what tells "stop for good" from "try again".
import { MoatError } from "../errors.js";
import { endpoint, networkError, type ClientIdentity } from "./server-client.js";
import { request } from "node:https";

export interface DeviceStatusAnswer {
  deviceId: string;
  /** The registry status: pending, active, suspended, quarantined, decommissioned. */
  status: string;
  certificate: { serial: string; status: "active" | "superseded" | "revoked" | "expired" | string; revocationReason: string | null; notAfter: string };
}

/** Asks; null when the server cannot tell (unreachable, an older server without the route). */
export function fetchDeviceStatus(server: string, ca: string, identity: ClientIdentity): Promise<DeviceStatusAnswer | null> {
  const url = endpoint(server, "/v1/device/status");
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "GET", ca, key: identity.keyPem, cert: identity.certPem, timeout: 15_000, agent: false, headers: { accept: "application/json" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
        if (body.length > 64 * 1024) req.destroy();
      });
      res.on("end", () => {
        if (res.statusCode !== 200) return resolve(null);
        try {
          const answer = JSON.parse(body) as DeviceStatusAnswer;
          resolve(typeof answer.status === "string" && typeof answer.certificate?.status === "string" ? answer : null);
        } catch {
          resolve(null);
        }
      });
    });
    req.on("timeout", () => req.destroy());
    req.on("error", (error) => reject(networkError(url, error)));
    req.end();
  });
}

/** The coded error that stops the device, or null when the answer gives no reason to stop. */
export function classifyDeviceStatus(answer: DeviceStatusAnswer): MoatError | null {
  const detail = { deviceId: answer.deviceId, status: answer.status, certificate: answer.certificate };
  const serial = answer.certificate.serial;
  if (answer.status === "decommissioned") return new MoatError("DEVICE_DECOMMISSIONED", `device ${answer.deviceId} is decommissioned`, { detail });
  if (answer.certificate.status === "revoked")
    return new MoatError("DEVICE_REVOKED", `the device certificate ${serial} is revoked${answer.certificate.revocationReason ? ` (${answer.certificate.revocationReason})` : ""}`, { detail });
  if (answer.status === "suspended") return new MoatError("DEVICE_SUSPENDED", `device ${answer.deviceId} is suspended`, { detail });
  if (answer.certificate.status === "expired")
    return new MoatError("DEVICE_CERT_EXPIRED", `the device certificate ${serial} expired at ${answer.certificate.notAfter}: enroll again with a new token or a factory certificate`, { detail });
  return null;
}
