import type { FastifyInstance, InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApi } from "../../src/api/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";

const settings = { bodyLimitBytes: 65_536, authFailureLimit: 50, authFailureWindowSeconds: 60 };
type Inject = InjectOptions;

describe("policy API and operator enforcement through the policy engine", () => {
  let t: TestApp;
  let api: FastifyInstance;
  const tokens: Record<string, string> = {};
  const as = (role: string) => ({ authorization: `Bearer ${tokens[role]}` });

  beforeAll(async () => {
    t = await createTestApp("sqlite");
    api = await buildApi(t.app, settings);
    tokens.admin = t.adminToken;
    for (const role of ["operator", "auditor"]) tokens[role] = (await t.app.tokens.create({ name: `${role}-token`, role }, "test")).token;
    await t.app.devices.create({ id: "pump-1", group: "pumps", status: "active" }, "test");
  });
  afterAll(async () => {
    await api.close();
    await t.cleanup();
  });

  // [request, status for admin, operator, auditor]; 403 means the engine refused the route's config.action.
  const matrix: [string, () => Inject, number, number, number][] = [
    ["list roles (roles:read)", () => ({ url: "/v1/roles" }), 200, 200, 200],
    ["show role (roles:read)", () => ({ url: "/v1/roles/device" }), 200, 200, 200],
    ["policy check (policy:read)", () => ({ method: "POST", url: "/v1/policy/check", payload: { device: "pump-1", action: "publish", topic: "devices/pump-1/telemetry/t" } }), 200, 200, 200],
    ["policy lint (policy:read)", () => ({ url: "/v1/policy/lint" }), 200, 200, 200],
    ["create role (roles:write)", () => ({ method: "POST", url: "/v1/roles", payload: { name: `r-${Math.random().toString(36).slice(2, 8)}`, rules: [{ action: "publish", resource: "x/${device.id}" }] } }), 201, 403, 403],
    ["assign role (roles:write)", () => ({ method: "POST", url: "/v1/roles/device/assignments", payload: { kind: "group", target: "pumps" } }), 201, 403, 403],
    ["unassign role (roles:write)", () => ({ method: "DELETE", url: "/v1/roles/device/assignments/group/pumps" }), 204, 403, 403],
    ["list devices (devices:read)", () => ({ url: "/v1/devices" }), 200, 200, 200],
    ["create device (devices:write)", () => ({ method: "POST", url: "/v1/devices", payload: { id: `d-${Math.random().toString(36).slice(2, 8)}` } }), 201, 201, 403],
    ["create token (tokens:write)", () => ({ method: "POST", url: "/v1/operators/tokens", payload: { name: `t-${Math.random().toString(36).slice(2, 8)}`, role: "auditor" } }), 201, 403, 403],
  ];

  for (const [title, request, ...expected] of matrix) {
    it(`${title}: admin ${expected[0]}, operator ${expected[1]}, auditor ${expected[2]}`, async () => {
      const got: number[] = [];
      // The auditor and operator go first so the admin's write does not change what they are asked.
      for (const role of ["auditor", "operator", "admin"]) {
        const response = await api.inject({ ...request(), headers: as(role) });
        got[["admin", "operator", "auditor"].indexOf(role)] = response.statusCode;
        if (response.statusCode === 403) expect(response.json()).toMatchObject({ code: "AUTH_FORBIDDEN" });
      }
      expect(got).toEqual(expected);
    });
  }

  it("records refusals as acl.denied events", async () => {
    const denied = await t.app.store.db.selectFrom("audit_events").select(["subject"]).where("type", "=", "acl.denied").execute();
    expect(denied.map((e) => e.subject)).toContain("roles:write");
  });

  it("a custom operator role takes effect for a token at once", async () => {
    const created = await api.inject({
      method: "POST",
      url: "/v1/roles",
      headers: as("admin"),
      payload: { name: "role-manager", description: "manages roles", rules: [{ action: "roles:*" }, { action: "policy:read" }, { effect: "deny", action: "roles:read" }] },
    });
    expect(created.statusCode).toBe(201);
    const { token } = await t.app.tokens.create({ name: "rm", role: "role-manager" }, "test");
    const headers = { authorization: `Bearer ${token}` };
    expect((await api.inject({ method: "POST", url: "/v1/roles/device/assignments", headers, payload: { kind: "device", target: "pump-1" } })).statusCode).toBe(201);
    expect((await api.inject({ url: "/v1/policy/lint", headers })).statusCode).toBe(200);
    // Explicit deny beats the role's own roles:* allow.
    expect((await api.inject({ url: "/v1/roles", headers })).statusCode).toBe(403);
    expect((await api.inject({ url: "/v1/devices", headers })).statusCode).toBe(403);
  });

  it("the simulator explains allow and deny with the deciding rule", async () => {
    const allow = await api.inject({ method: "POST", url: "/v1/policy/check", headers: as("auditor"), payload: { device: "pump-1", action: "subscribe", topic: "devices/pump-1/commands/+" } });
    expect(allow.json()).toMatchObject({ allow: true, reason: "rule", rule: { role: "device", index: 2, effect: "allow" }, device: { id: "pump-1", role: "device" } });
    const deny = await api.inject({ method: "POST", url: "/v1/policy/check", headers: as("auditor"), payload: { device: "pump-1", action: "subscribe", topic: "#" } });
    expect(deny.json()).toMatchObject({ allow: false, reason: "no-matching-rule", rule: null });
  });

  it("answers bad input with problem+json and policy codes, changing nothing", async () => {
    const before = await t.app.store.latestSeq();
    const cases: [Inject, number, string][] = [
      [{ method: "POST", url: "/v1/roles", payload: { name: "bad", rules: [{ action: "publish", resource: "a/#/b" }] } }, 400, "POLICY_RULE_INVALID"],
      [{ method: "POST", url: "/v1/roles", payload: { name: "bad", rules: [{ action: "devices:read", resource: "devices/x" }] } }, 400, "POLICY_RULE_INVALID"],
      [{ method: "POST", url: "/v1/roles", payload: { name: "Bad!", rules: [] } }, 400, "ROLE_NAME_INVALID"],
      [{ method: "POST", url: "/v1/roles", payload: { name: "device", rules: [] } }, 409, "ROLE_BUILTIN"],
      [{ method: "POST", url: "/v1/roles", payload: { name: "x", rules: [{ action: "publish", resource: "a", extra: 1 }] } }, 400, "VALIDATION_FAILED"],
      [{ method: "DELETE", url: "/v1/roles/admin" }, 409, "ROLE_BUILTIN"],
      [{ url: "/v1/roles/ghost" }, 404, "ROLE_NOT_FOUND"],
      [{ method: "POST", url: "/v1/roles/ghost/assignments", payload: { kind: "device", target: "pump-1" } }, 404, "ROLE_NOT_FOUND"],
      [{ method: "POST", url: "/v1/roles/device/assignments", payload: { kind: "planet", target: "x" } }, 400, "VALIDATION_FAILED"],
      [{ method: "DELETE", url: "/v1/roles/device/assignments/group/nobody" }, 404, "ROLE_ASSIGNMENT_NOT_FOUND"],
      [{ method: "POST", url: "/v1/policy/check", payload: { device: "pump-1", action: "publish", topic: "a/+" } }, 400, "POLICY_TOPIC_INVALID"],
      [{ method: "POST", url: "/v1/policy/check", payload: { device: "ghost", action: "publish", topic: "a" } }, 404, "DEVICE_NOT_FOUND"],
    ];
    for (const [request, status, code] of cases) {
      const response = await api.inject({ ...request, headers: as("admin") });
      expect([request.url, response.statusCode, response.json().code]).toEqual([request.url, status, code]);
      expect(response.headers["content-type"]).toMatch(/^application\/problem\+json/);
    }
    expect(await t.app.store.latestSeq()).toBe(before);
  });
});
