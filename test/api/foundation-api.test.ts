import https from "node:https";
import type { FastifyInstance, InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApi } from "../../src/api/index.js";
import { parseOperatorToken } from "../../src/identity/index.js";
import { createLogger, startServers } from "../../src/serve.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { forEachDialect } from "../helpers/dialects.js";

const settings = { bodyLimitBytes: 4096, authFailureLimit: 5, authFailureWindowSeconds: 60 };

forEachDialect("REST API", (dialect) => {
  let t: TestApp;
  let api: FastifyInstance;
  let operatorToken: string;
  let auditorToken: string;
  const as = (token: string) => ({ authorization: `Bearer ${token}` });

  beforeAll(async () => {
    t = await createTestApp(dialect);
    api = await buildApi(t.app, settings);
    operatorToken = (await t.app.tokens.create({ name: "op", role: "operator" }, "test")).token;
    auditorToken = (await t.app.tokens.create({ name: "aud", role: "auditor" }, "test")).token;
  });
  afterAll(async () => {
    await api.close();
    await t.cleanup();
  });

  it("creates, gets, lists, updates and changes the status of devices", async () => {
    const created = await api.inject({ method: "POST", url: "/v1/devices", headers: as(operatorToken), payload: { id: "thermo-1", group: "hvac", attributes: { floor: "2" } } });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ id: "thermo-1", status: "pending", role: "device" });
    expect((await api.inject({ url: "/v1/devices/thermo-1", headers: as(auditorToken) })).json()).toMatchObject({ group: "hvac" });
    const patched = await api.inject({ method: "PATCH", url: "/v1/devices/thermo-1", headers: as(operatorToken), payload: { name: "Thermostat" } });
    expect(patched.json()).toMatchObject({ name: "Thermostat" });
    const status = await api.inject({ method: "POST", url: "/v1/devices/thermo-1/status", headers: as(operatorToken), payload: { status: "quarantined", reason: "odd traffic" } });
    expect(status.json()).toMatchObject({ status: "quarantined" });
    const list = await api.inject({ url: "/v1/devices?status=quarantined&limit=10", headers: as(auditorToken) });
    expect(list.json().devices.map((d: { id: string }) => d.id)).toEqual(["thermo-1"]);
  });

  it("answers bad input with problem+json and stable codes", async () => {
    const cases: [InjectOptions, number, string][] = [
      [{ method: "POST", url: "/v1/devices", headers: as(operatorToken), payload: { id: "bad/id" } }, 400, "DEVICE_ID_INVALID"],
      [{ method: "POST", url: "/v1/devices", headers: as(operatorToken), payload: { id: "thermo-1" } }, 409, "DEVICE_EXISTS"],
      [{ url: "/v1/devices/ghost", headers: as(operatorToken) }, 404, "DEVICE_NOT_FOUND"],
      [{ url: "/v1/devices" }, 401, "AUTH_TOKEN_MISSING"],
      [{ method: "POST", url: "/v1/devices", headers: as(auditorToken), payload: { id: "x1" } }, 403, "AUTH_FORBIDDEN"],
      [{ method: "POST", url: "/v1/devices", headers: { ...as(operatorToken), "content-type": "application/json" }, payload: '{"id": ' }, 400, "BODY_MALFORMED"],
      [{ method: "POST", url: "/v1/devices", headers: { ...as(operatorToken), "content-type": "application/json" }, payload: JSON.stringify({ id: "big", name: "x".repeat(8000) }) }, 413, "BODY_TOO_LARGE"],
      [{ method: "POST", url: "/v1/devices", headers: as(operatorToken), payload: { id: "x2", unexpected: true } }, 400, "VALIDATION_FAILED"],
      [{ method: "POST", url: "/v1/operators/tokens", headers: as(operatorToken), payload: { name: "n", role: "admin" } }, 403, "AUTH_FORBIDDEN"],
      [{ url: "/v1/nothing-here", headers: as(operatorToken) }, 404, "NOT_FOUND"],
      // A page holds at most 1,000 items: more is refused, never silently cut.
      [{ url: "/v1/devices?limit=1001", headers: as(operatorToken) }, 400, "PAGE_LIMIT_EXCEEDED"],
      [{ url: "/v1/audit/events?limit=5000", headers: as(operatorToken) }, 400, "PAGE_LIMIT_EXCEEDED"],
      [{ url: "/v1/certificates?limit=10000", headers: as(operatorToken) }, 400, "PAGE_LIMIT_EXCEEDED"],
    ];
    for (const [request, status, code] of cases) {
      const response = await api.inject(request);
      expect([request.url, response.statusCode, response.json().code]).toEqual([request.url, status, code]);
      expect(response.headers["content-type"]).toMatch(/^application\/problem\+json/);
    }
    expect((await t.app.devices.list({ search: "x" })).devices).toEqual([]);
  });

  it("refuses an invalid status transition with 409", async () => {
    await api.inject({ method: "POST", url: "/v1/devices", headers: as(operatorToken), payload: { id: "old-1" } });
    await api.inject({ method: "POST", url: "/v1/devices/old-1/status", headers: as(operatorToken), payload: { status: "decommissioned" } });
    const back = await api.inject({ method: "POST", url: "/v1/devices/old-1/status", headers: as(operatorToken), payload: { status: "active" } });
    expect([back.statusCode, back.json().code]).toEqual([409, "DEVICE_STATUS_TRANSITION"]);
  });

  it("creates tokens once, lists them without secrets, revokes them", async () => {
    const created = await api.inject({ method: "POST", url: "/v1/operators/tokens", headers: as(t.adminToken), payload: { name: "ci", role: "auditor", expiresInSeconds: 3600 } });
    expect(created.statusCode).toBe(201);
    const secret = created.json().token as string;
    expect((await api.inject({ url: "/v1/audit/events", headers: as(secret) })).statusCode).toBe(200);
    const list = await api.inject({ url: "/v1/operators/tokens", headers: as(t.adminToken) });
    expect(list.body).not.toContain(parseOperatorToken(secret)!.secret);
    expect(list.json().map((x: { name: string }) => x.name)).toContain("ci");
    expect((await api.inject({ method: "DELETE", url: "/v1/operators/tokens/ci", headers: as(t.adminToken) })).json().revokedAt).toBeTypeOf("string");
    expect((await api.inject({ url: "/v1/audit/events", headers: as(secret) })).statusCode).toBe(401);
  });

  it("lists audit events and verifies the chain", async () => {
    const events = (await api.inject({ url: "/v1/audit/events?type=device.status_changed", headers: as(auditorToken) })).json();
    expect(events.length).toBeGreaterThan(0);
    expect((await api.inject({ url: "/v1/audit/verify", headers: as(auditorToken) })).json()).toMatchObject({ ok: true });
  });

  it("serves health, readiness, metrics, OpenAPI and security headers", async () => {
    expect((await api.inject({ url: "/healthz" })).json()).toEqual({ status: "ok" });
    expect((await api.inject({ url: "/readyz" })).json()).toEqual({ status: "ready" });
    const metrics = await api.inject({ url: "/metrics", headers: as(auditorToken) });
    expect(metrics.body).toMatch(/moat_devices\{status="quarantined"\} 1/);
    expect(metrics.body).toMatch(/moat_http_requests_total\{route="\/v1\/devices",status="201"\}/);
    const openapi = (await api.inject({ url: "/docs/json" })).json();
    expect(openapi.openapi).toBe("3.1.0");
    expect(Object.keys(openapi.paths)).toContain("/v1/devices/{id}/status");
    const headers = (await api.inject({ url: "/healthz" })).headers;
    expect(headers["x-content-type-options"]).toBe("nosniff");
    expect(headers["content-security-policy"]).toContain("default-src 'none'");
  });
});

describe("REST API back-off and HTTPS", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp("sqlite");
  });
  afterAll(async () => t.cleanup());

  it("backs off an address after repeated bad tokens and records auth.failed", async () => {
    const api = await buildApi(t.app, { ...settings, authFailureLimit: 3 });
    try {
      const bad = { authorization: "Bearer moat_0000000000000000_" + "A".repeat(43) };
      for (let i = 0; i < 3; i++) expect((await api.inject({ url: "/v1/devices", headers: bad })).statusCode).toBe(401);
      const blocked = await api.inject({ url: "/v1/devices", headers: { authorization: `Bearer ${t.adminToken}` } });
      expect([blocked.statusCode, blocked.json().code]).toEqual([429, "RATE_LIMITED"]);
      expect(Number(blocked.headers["retry-after"])).toBeGreaterThan(0);
      // The first failure from the address in full, the others in one summary (test/api/failure-audit.test.ts).
      expect((await t.app.audit.list({ type: "auth.failed" })).length).toBe(1);
      await t.app.securityEvents.flush();
      expect((await t.app.audit.list({ type: "auth.failed.summary" })).map((e) => e.data)).toEqual([expect.objectContaining({ kind: "api:AUTH_TOKEN_INVALID", count: 2 })]);
    } finally {
      await api.close();
    }
  });

  it("serves HTTPS with the server certificate from Moat's CA (TLS 1.2+)", async () => {
    const config = t.app.config;
    const servers = await startServers({ ...t.app, config: { ...config, apiPort: 0 } } as typeof t.app, createLogger({ ...config, logLevel: "silent" }));
    try {
      const ca = await t.app.ca.chainPem();
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get(`${servers.apiUrl}/healthz`, { ca, servername: "localhost" }, (res) => {
            let data = "";
            res.on("data", (chunk) => (data += chunk));
            res.on("end", () => resolve(data));
          })
          .on("error", reject);
      });
      expect(JSON.parse(body)).toEqual({ status: "ok" });
      const refused = await new Promise<string>((resolve) => {
        https
          .get(`${servers.apiUrl}/healthz`, { ca, maxVersion: "TLSv1.1", minVersion: "TLSv1" }, () => resolve("connected"))
          .on("error", (error) => resolve((error as NodeJS.ErrnoException).code ?? error.message));
      });
      expect(refused).not.toBe("connected");
    } finally {
      await servers.close();
    }
  });
});
