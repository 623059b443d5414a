import { request as httpsRequest } from "node:https";
import { ERROR_CODES, MoatError, type ErrorCode } from "../errors.js";

/** What `GET /v1/info` tells clients: the server's public endpoints (no secrets). */
export interface ServerInfo {
  estUrl?: string;
  mqttUrl?: string;
  trustDomain?: string;
  version?: string;
}

export interface AuditEventView {
  seq: number;
  type: string;
  subject: string;
  data: Record<string, unknown>;
}

/**
 * The operator calls the simulator makes on a running Moat's REST API, with the admin token: create
 * devices, hand out enrollment tokens, create and delete a role, revoke and decommission devices, read
 * the audit log. Moat's own CA is trusted through `ca` (the global fetch cannot take a per-request CA).
 * A refusal comes back as a MoatError with the server's code, so the summary counts it by code.
 */
export class AdminApi {
  constructor(private readonly options: { url: string; ca: string; token: string; timeoutMs?: number }) {}

  info(): Promise<ServerInfo> {
    return this.call("GET", "/v1/info", undefined, false);
  }

  createDevice(id: string, group: string | null): Promise<unknown> {
    return this.call("POST", "/v1/devices", { id, group });
  }

  async enrollmentToken(deviceId: string, ttl = "1h"): Promise<string> {
    const answer = await this.call<{ token: string }>("POST", "/v1/enrollment-tokens", { deviceId, ttl });
    return answer.token;
  }

  createRole(name: string, description: string, rules: { effect: "allow" | "deny"; action: string; resource: string }[]): Promise<unknown> {
    return this.call("POST", "/v1/roles", { name, description, rules });
  }

  assignRole(role: string, deviceId: string): Promise<unknown> {
    return this.call("POST", `/v1/roles/${encodeURIComponent(role)}/assignments`, { kind: "device", target: deviceId });
  }

  deleteRole(name: string): Promise<unknown> {
    return this.call("DELETE", `/v1/roles/${encodeURIComponent(name)}`);
  }

  revokeDevice(deviceId: string, reason = "keyCompromise"): Promise<{ revoked: { serial: string }[] }> {
    return this.call("POST", `/v1/devices/${encodeURIComponent(deviceId)}/certificates/revoke`, { reason });
  }

  setStatus(deviceId: string, status: "suspended" | "decommissioned" | "active", reason: string): Promise<unknown> {
    return this.call("POST", `/v1/devices/${encodeURIComponent(deviceId)}/status`, { status, reason });
  }

  auditEvents(query: { type?: string; subject?: string; limit?: number }): Promise<AuditEventView[]> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    return this.call("GET", `/v1/audit/events?${params.toString()}`);
  }

  private call<T>(method: string, path: string, body?: unknown, authorized = true): Promise<T> {
    const target = new URL(path, this.options.url);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<T>((resolve, reject) => {
      const req = httpsRequest(
        target,
        {
          method,
          ca: this.options.ca,
          timeout: this.options.timeoutMs ?? 30_000,
          headers: {
            accept: "application/json",
            ...(authorized ? { authorization: `Bearer ${this.options.token}` } : {}),
            ...(payload ? { "content-type": "application/json", "content-length": String(payload.length) } : {}),
          },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("error", reject);
          response.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let parsed: unknown = undefined;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              // A non-JSON answer is reported below with its status.
            }
            const status = response.statusCode ?? 0;
            if (status >= 200 && status < 300) return resolve(parsed as T);
            const problem = (parsed ?? {}) as { code?: unknown; detail?: unknown };
            const code = typeof problem.code === "string" && problem.code in ERROR_CODES ? (problem.code as ErrorCode) : "SIM_API_FAILED";
            const detail = typeof problem.detail === "string" ? problem.detail : text.slice(0, 200);
            reject(new MoatError(code, `${method} ${target.pathname} answered ${status}: ${detail}`, { status }));
          });
        },
      );
      req.on("timeout", () => req.destroy(new MoatError("SIM_API_FAILED", `${method} ${target.pathname}: no answer within ${this.options.timeoutMs ?? 30_000} ms`)));
      req.on("error", (error) =>
        reject(error instanceof MoatError ? error : new MoatError("SIM_API_FAILED", `${method} ${target.origin}${target.pathname} failed: ${error.message}`, { cause: error })),
      );
      req.end(payload);
    });
  }
}
