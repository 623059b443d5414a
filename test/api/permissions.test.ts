/**
 * Operator permissions: every route the running API serves, with a token of every built-in operator role,
 * against the table docs/permissions.md publishes; and the role-assignment effects hidden in write routes.
 */
import { readFileSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApi } from "../../src/api/index.js";
import { routeAuthorizations } from "../../src/api/auth.js";
import { BUILTIN_ROLES } from "../../src/policy/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { forEachDialect } from "../helpers/dialects.js";
import { injectRoute } from "../helpers/inject.js";

const settings = { bodyLimitBytes: 4096, authFailureLimit: 1000, authFailureWindowSeconds: 60 };
const as = (token: string) => ({ authorization: `Bearer ${token}` });

interface TableRow {
  route: string;
  field: string | null;
  requires: string[];
  allowed: Record<string, boolean>;
}

/** The route table of docs/permissions.md, as published. */
function publishedTable(): { roles: string[]; rows: TableRow[] } {
  const lines = readFileSync(new URL("../../docs/permissions.md", import.meta.url), "utf8").split("\n");
  const header = lines.findIndex((l) => l.startsWith("| Route | Field | Requires |"));
  expect(header).toBeGreaterThan(0);
  const roles = lines[header]!.split("|").slice(4, -1).map((c) => c.trim());
  const rows: TableRow[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith("|")) break;
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    const code = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    rows.push({
      route: code(cells[0]!)[0]!,
      field: code(cells[1]!)[0] ?? null,
      requires: code(cells[2]!),
      allowed: Object.fromEntries(roles.map((role, i) => [role, cells[3 + i] === "yes"])),
    });
  }
  return { roles, rows };
}

/** A body that passes validation for each field row, so the field check (not the schema) decides. */
const FIELD_BODIES: Record<string, (role: string) => Record<string, unknown>> = {
  "POST /v1/devices role": (role) => ({ id: `matrix-${role}`, role: "device" }),
  "PATCH /v1/devices/:id role": () => ({ role: "device" }),
  "POST /v1/operators/tokens role": (role) => ({ name: `matrix-${role}`, role: "auditor" }),
};

const PARAMS: Record<string, string> = { id: "matrix-none", serial: "01", name: "matrix-none", kind: "device", target: "matrix-none" };

describe("the published permission table", () => {
  let t: TestApp;
  let api: FastifyInstance;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    t = await createTestApp("sqlite");
    api = await buildApi(t.app, settings);
    for (const role of BUILTIN_ROLES) {
      if (!(await t.app.policy.isOperatorRole(role.name))) continue;
      tokens[role.name] = (await t.app.tokens.create({ name: `only-${role.name}`, role: role.name }, "test")).token;
    }
  });
  afterAll(async () => {
    await api.close();
    await t.cleanup();
  });

  it("has a column for every built-in operator role", () => {
    expect(publishedTable().roles.sort()).toEqual(Object.keys(tokens).sort());
  });

  it("lists every route the server serves with its permission and field permissions, and nothing else", () => {
    const served = routeAuthorizations(api).filter((r) => !r.public && r.method !== "HEAD");
    expect(served.length).toBeGreaterThan(20);
    const expected = served.flatMap((r) => [
      { route: `${r.method} ${r.url}`, field: null, requires: [r.action!] },
      ...Object.entries(r.fields).map(([field, action]) => ({ route: `${r.method} ${r.url}`, field, requires: [r.action!, action] })),
    ]);
    const published = publishedTable().rows.map(({ route, field, requires }) => ({ route, field, requires }));
    const key = (r: { route: string; field: string | null }) => `${r.route} ${r.field ?? ""}`;
    expect(published.sort((a, b) => key(a).localeCompare(key(b)))).toEqual(expected.sort((a, b) => key(a).localeCompare(key(b))));
  });

  it("allows and refuses every route for every built-in operator role exactly as published", async () => {
    const { roles, rows } = publishedTable();
    // Routes that answer with an open stream (server-sent events) are cancelled once their headers are sent.
    const streaming = new Set(routeAuthorizations(api).filter((r) => r.stream).map((r) => `${r.method} ${r.url}`));
    expect(streaming.has("GET /v1/events/stream")).toBe(true);
    const outcomes: string[] = [];
    const wanted: string[] = [];
    for (const row of rows) {
      const [method, path] = row.route.split(" ") as [string, string];
      const url = path.replace(/:([a-z]+)/g, (_, name: string) => PARAMS[name]!);
      for (const role of roles) {
        const sample = row.field === null ? undefined : FIELD_BODIES[`${row.route} ${row.field}`];
        if (row.field !== null) expect(sample, `a sample body for ${row.route} field ${row.field}`).toBeDefined();
        const payload = method === "GET" || method === "DELETE" ? undefined : (sample?.(role) ?? {});
        const response = await injectRoute(api, { method: method as "GET", url, headers: as(tokens[role]!), ...(payload ? { payload } : {}) }, streaming.has(row.route));
        const refused = response.statusCode === 403 && (response.json() as { code?: string }).code === "AUTH_FORBIDDEN";
        expect(response.statusCode, `${row.route} as ${role}`).not.toBe(401);
        expect(response.statusCode, `${row.route} as ${role}`).toBeLessThan(500);
        outcomes.push(`${row.route} ${row.field ?? ""} ${role}: ${refused ? "refused" : "allowed"}`);
        wanted.push(`${row.route} ${row.field ?? ""} ${role}: ${row.allowed[role] ? "allowed" : "refused"}`);
      }
    }
    expect(outcomes).toEqual(wanted);
  });
});

forEachDialect("role assignment through device and token routes", (dialect) => {
  let t: TestApp;
  let api: FastifyInstance;
  let operator: string;
  let admin: string;

  beforeAll(async () => {
    t = await createTestApp(dialect);
    api = await buildApi(t.app, settings);
    admin = t.adminToken;
    operator = (await t.app.tokens.create({ name: "op", role: "operator" }, "test")).token;
    await t.app.devices.create({ id: "cam-1", group: "lobby" }, "test");
    await t.app.policy.createRole("relay", [{ action: "publish", resource: "relays/${device.id}/#" }], "test");
    await t.app.policy.assignRole("relay", { kind: "group", target: "relays" }, "test");
  });
  afterAll(async () => {
    await api.close();
    await t.cleanup();
  });

  it("refuses a role change by an operator token, and changes nothing", async () => {
    for (const role of ["admin", "relay", "no-such-role"]) {
      const response = await api.inject({ method: "PATCH", url: "/v1/devices/cam-1", headers: as(operator), payload: { role } });
      expect([role, response.statusCode, response.json().code]).toEqual([role, 403, "AUTH_FORBIDDEN"]);
      expect(response.json().detail_fields).toMatchObject({ action: "roles:write", field: "role" });
    }
    const registered = await api.inject({ method: "POST", url: "/v1/devices", headers: as(operator), payload: { id: "cam-2", role: "relay" } });
    expect(registered.statusCode).toBe(403);
    expect((await t.app.devices.get("cam-1")).role).toBe("device");
    await expect(t.app.devices.get("cam-2")).rejects.toMatchObject({ code: "DEVICE_NOT_FOUND" });
    const denied = await t.app.audit.list({ type: "acl.denied", limit: 1000 });
    expect(denied.some((e) => e.subject === "roles:write" && (e.data as { field?: string }).field === "role")).toBe(true);
  });

  it("refuses operator roles and unknown roles for a device, whoever asks", async () => {
    for (const role of ["admin", "operator", "auditor", "no-such-role"]) {
      const response = await api.inject({ method: "PATCH", url: "/v1/devices/cam-1", headers: as(admin), payload: { role } });
      expect([role, response.statusCode, response.json().code]).toEqual([role, 400, "DEVICE_ROLE_INVALID"]);
      const created = await api.inject({ method: "POST", url: "/v1/devices", headers: as(admin), payload: { id: "cam-3", role } });
      expect([role, created.statusCode, created.json().code]).toEqual([role, 400, "DEVICE_ROLE_INVALID"]);
    }
    expect((await t.app.devices.get("cam-1")).role).toBe("device");
  });

  it("records the old and new value of every changed field", async () => {
    const response = await api.inject({ method: "PATCH", url: "/v1/devices/cam-1", headers: as(admin), payload: { role: "relay", name: "Lobby camera" } });
    expect(response.statusCode).toBe(200);
    const events = await t.app.audit.list({ type: "device.updated", subject: "cam-1", limit: 1000 });
    expect(events.at(-1)).toMatchObject({
      severity: "medium",
      data: { changes: { role: { from: "device", to: "relay" }, name: { from: "cam-1", to: "Lobby camera" } } },
    });
  });

  it("treats joining or leaving a group that carries roles as a role assignment", async () => {
    const join = await api.inject({ method: "PATCH", url: "/v1/devices/cam-1", headers: as(operator), payload: { group: "relays" } });
    expect([join.statusCode, join.json().detail_fields]).toEqual([403, { action: "roles:write", field: "group" }]);
    const create = await api.inject({ method: "POST", url: "/v1/devices", headers: as(operator), payload: { id: "cam-4", group: "relays" } });
    expect(create.statusCode).toBe(403);
    // Between groups without roles an operator moves devices freely.
    const plain = await api.inject({ method: "PATCH", url: "/v1/devices/cam-1", headers: as(operator), payload: { group: "hall" } });
    expect([plain.statusCode, plain.json().group]).toEqual([200, "hall"]);
    expect((await api.inject({ method: "PATCH", url: "/v1/devices/cam-1", headers: as(admin), payload: { group: "relays" } })).statusCode).toBe(200);
    const leave = await api.inject({ method: "PATCH", url: "/v1/devices/cam-1", headers: as(operator), payload: { group: null } });
    expect(leave.statusCode).toBe(403);
    expect((await t.app.devices.get("cam-1")).group).toBe("relays");
  });

  it("needs roles:write to mint a token, since its role is a role assignment", async () => {
    await t.app.policy.createRole("minter", [{ action: "tokens:write", resource: "*" }], "test");
    const minter = (await t.app.tokens.create({ name: "minter", role: "minter" }, "test")).token;
    const response = await api.inject({ method: "POST", url: "/v1/operators/tokens", headers: as(minter), payload: { name: "mine", role: "admin" } });
    expect([response.statusCode, response.json().detail_fields]).toEqual([403, { action: "roles:write", field: "role" }]);
    expect((await t.app.tokens.list()).map((tk) => tk.name)).not.toContain("mine");
  });
});
