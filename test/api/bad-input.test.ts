/**
 * Bad input never reaches a 500: a walk over the published OpenAPI document sends wrong-type,
 * out-of-range and boundary values to every field, query parameter and path parameter of every route.
 * Out-of-range and wrong-type values must be refused with 4xx problem+json; boundary values may succeed
 * or be refused, but never crash. Identifiers are never coerced (12345 and ["x"] are not "12345"/"x").
 */
import type { FastifyInstance, InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApi } from "../../src/api/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { injectRoute, type InjectedAnswer } from "../helpers/inject.js";
import { isStreaming, typesOf, type Operation, type Schema } from "../helpers/openapi.js";

/** A body the route accepts, so each mutated field is what the server judges (first match wins). */
const VALID_BODIES: Array<[RegExp, Record<string, unknown>]> = [
  [/^POST \/v1\/devices$/, { id: "walk-device", group: "walk" }],
  [/^PATCH \/v1\/devices\/\{id\}$/, { name: "Walk" }],
  [/^POST \/v1\/devices\/\{id\}\/status$/, { status: "suspended", reason: "walk" }],
  [/^POST \/v1\/operators\/tokens$/, { name: "walk-token", role: "auditor" }],
  [/^POST \/v1\/certificates$/, { deviceId: "walk-device", csr: "not a csr" }],
  [/^POST \/v1\/enrollment-tokens$/, { deviceId: "walk-device", ttl: "1h" }],
  [/^POST \/v1\/roles$/, { name: "walk-role", rules: [{ action: "devices:read" }] }],
  [/^POST \/v1\/roles\/\{name\}\/assignments$/, { kind: "device", target: "walk-device" }],
  [/^POST \/v1\/policy\/check$/, { device: "walk-device", action: "publish", topic: "devices/walk-device/telemetry" }],
  // Refused by scope (no allowed targets configured): the walk never starts a real scan.
  [/^POST \/v1\/scans$/, { targets: ["192.0.2.1"], ports: "1" }],
];
const PATH_VALUES: Record<string, string> = { id: "walk-device", name: "walk-role", serial: "01", kind: "device", target: "walk-device" };

/** Values that must be refused for a field of this schema. */
function invalidValues(schema: Schema): unknown[] {
  const types = typesOf(schema);
  const out: unknown[] = [];
  if (!types.includes("null")) out.push(null);
  if (types.includes("string")) {
    out.push(12345, ["x"], { x: 1 }, true);
    if (schema.maxLength !== undefined) out.push("a".repeat(schema.maxLength + 1));
    if (schema.enum) out.push("not-one-of-them");
  }
  if (types.includes("integer")) {
    out.push("1", 1.5, [1], true, 99_999_999_999_999, -99_999_999_999_999, 1e308);
    if (schema.minimum !== undefined) out.push(schema.minimum - 1);
    if (schema.maximum !== undefined) out.push(schema.maximum + 1);
  }
  if (types.includes("boolean")) out.push("true", 1, [true]);
  if (types.includes("array")) {
    out.push("x", { 0: "x" });
    if (schema.maxItems !== undefined) out.push(Array.from({ length: schema.maxItems + 1 }, () => sample(schema.items ?? {})));
    if (schema.items) for (const bad of invalidValues(schema.items).slice(0, 3)) out.push([bad]);
  }
  if (types.includes("object")) out.push("x", ["x"], 7);
  return out;
}

/** Values at the edges of what the schema allows: the server may accept or refuse them, never crash. */
function boundaryValues(schema: Schema): unknown[] {
  const types = typesOf(schema);
  const out: unknown[] = [];
  if (types.includes("string") && !schema.enum && !schema.pattern) out.push("", "a".repeat(schema.maxLength ?? 4096), "\u0000", "../../etc/passwd", "\u202e\ud83d\ude00");
  if (types.includes("integer")) out.push(schema.minimum ?? 0, schema.maximum ?? Number.MAX_SAFE_INTEGER);
  if (types.includes("array") && schema.maxItems !== undefined) out.push([]);
  return out;
}

function sample(schema: Schema): unknown {
  const types = typesOf(schema);
  if (schema.enum) return schema.enum[0];
  if (types.includes("string")) return "x";
  if (types.includes("integer")) return schema.minimum ?? 1;
  if (types.includes("boolean")) return false;
  if (types.includes("array")) return [];
  return {};
}

/** Query values (always text on the wire): wrong forms and out-of-range numbers. */
function invalidQueryValues(schema: Schema): string[] {
  const types = typesOf(schema);
  const out: string[] = [];
  if (types.includes("integer")) {
    out.push("abc", "1e3", "0x10", " 1", "1.5", "-1", "", "99999999999999999999");
    if (schema.minimum !== undefined) out.push(String(schema.minimum - 1));
    if (schema.maximum !== undefined) out.push(String(schema.maximum + 1));
  }
  if (types.includes("string") && schema.maxLength !== undefined) out.push("a".repeat(schema.maxLength + 1));
  if (schema.enum) out.push("not-one-of-them");
  return out;
}

describe("bad input across the OpenAPI document (no 500, coded problem+json)", () => {
  let t: TestApp;
  let api: FastifyInstance;
  let operations: Array<{ method: string; path: string; op: Operation }> = [];
  const headers = () => ({ authorization: `Bearer ${t.adminToken}` });

  beforeAll(async () => {
    t = await createTestApp("sqlite");
    api = await buildApi(t.app, { bodyLimitBytes: 1_048_576, authFailureLimit: 10_000, authFailureWindowSeconds: 60 });
    const spec = (await api.inject({ url: "/docs/json" })).json() as { paths: Record<string, Record<string, Operation>> };
    operations = Object.entries(spec.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, op })));
    await t.app.devices.create({ id: "walk-device" }, "test");
  });
  afterAll(async () => {
    await api?.close();
    await t?.cleanup();
  });

  const failures: string[] = [];
  function judge(label: string, response: InjectedAnswer, mustRefuse: boolean): void {
    const problem = response.headers["content-type"]?.toString().startsWith("application/problem+json") ?? false;
    const code = problem ? (response.json() as { code?: unknown }).code : undefined;
    if (response.statusCode >= 500) failures.push(`${label}: ${response.statusCode} ${response.body.slice(0, 200)}`);
    else if (mustRefuse && (response.statusCode < 400 || !problem || typeof code !== "string")) failures.push(`${label}: expected 4xx problem+json, got ${response.statusCode} ${response.body.slice(0, 120)}`);
    else if (response.statusCode >= 400 && (!problem || typeof code !== "string")) failures.push(`${label}: ${response.statusCode} is not a coded problem+json`);
  }

  function urlFor(path: string, overrides: Record<string, string> = {}, query = ""): string {
    return path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(overrides[name] ?? PATH_VALUES[name] ?? "x")) + query;
  }

  it("the document lists the routes the walk must cover", () => {
    expect(operations.length).toBeGreaterThan(30);
    expect(operations.some((o) => o.method === "POST" && o.path === "/v1/operators/tokens")).toBe(true);
    // A route answering with an open stream is cancelled once its headers are sent (injectRoute).
    expect(operations.filter((o) => isStreaming(o.op)).map((o) => o.path)).toContain("/v1/events/stream");
  });

  it("refuses wrong-type and out-of-range body fields, survives boundary values", async () => {
    let sent = 0;
    for (const { method, path, op } of operations) {
      const json = op.requestBody?.content?.["application/json"]?.schema;
      if (!json?.properties) continue;
      const base = VALID_BODIES.find(([pattern]) => pattern.test(`${method} ${path}`))?.[1] ?? Object.fromEntries((json.required ?? []).map((k) => [k, sample(json.properties![k]!)]));
      for (const [field, schema] of Object.entries(json.properties)) {
        for (const value of invalidValues(schema)) {
          const response = await injectRoute(api, { method: method as InjectOptions["method"], url: urlFor(path), headers: headers(), payload: { ...base, [field]: value } }, isStreaming(op));
          judge(`${method} ${path} ${field}=${JSON.stringify(value)?.slice(0, 40)}`, response, true);
          sent++;
        }
        for (const value of boundaryValues(schema)) {
          const response = await injectRoute(api, { method: method as InjectOptions["method"], url: urlFor(path), headers: headers(), payload: { ...base, [field]: value } }, isStreaming(op));
          judge(`${method} ${path} ${field}=${JSON.stringify(value)?.slice(0, 40)} (boundary)`, response, false);
          sent++;
        }
      }
      // Wrong body shapes as a whole.
      for (const payload of ["[]", "7", '"x"', "null", "{"]) {
        const response = await injectRoute(api, { method: method as InjectOptions["method"], url: urlFor(path), headers: { ...headers(), "content-type": "application/json" }, payload }, isStreaming(op));
        judge(`${method} ${path} body ${payload}`, response, true);
        sent++;
      }
    }
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(300);
  });

  it("refuses malformed and out-of-range query parameters, survives boundary values", async () => {
    let sent = 0;
    for (const { method, path, op } of operations) {
      for (const parameter of op.parameters ?? []) {
        if (parameter.in !== "query") continue;
        for (const value of invalidQueryValues(parameter.schema)) {
          const response = await injectRoute(api, { method: method as InjectOptions["method"], url: urlFor(path, {}, `?${parameter.name}=${encodeURIComponent(value)}`), headers: headers() }, isStreaming(op));
          judge(`${method} ${path}?${parameter.name}=${value.slice(0, 40)}`, response, true);
          sent++;
        }
        // A repeated parameter arrives as an array: never joined or picked silently.
        const repeated = await injectRoute(api, { method: method as InjectOptions["method"], url: urlFor(path, {}, `?${parameter.name}=1&${parameter.name}=2`), headers: headers() }, isStreaming(op));
        judge(`${method} ${path}?${parameter.name} repeated`, repeated, true);
        for (const value of boundaryValues(parameter.schema).filter((v) => typeof v === "number" || typeof v === "string")) {
          const response = await injectRoute(api, { method: method as InjectOptions["method"], url: urlFor(path, {}, `?${parameter.name}=${encodeURIComponent(String(value))}`), headers: headers() }, isStreaming(op));
          judge(`${method} ${path}?${parameter.name}=${String(value).slice(0, 40)} (boundary)`, response, false);
        }
        sent++;
      }
    }
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThan(40);
  });

  it("survives hostile path parameters", async () => {
    for (const { method, path, op } of operations) {
      for (const parameter of op.parameters ?? []) {
        if (parameter.in !== "path") continue;
        const values = ["a".repeat((parameter.schema.maxLength ?? 256) + 1), "\u0000", "..", "%", "a/b", " "];
        for (const value of values) {
          const response = await injectRoute(api, { method: method as InjectOptions["method"], url: urlFor(path, { [parameter.name]: value }), headers: headers(), ...(method === "GET" || method === "DELETE" ? {} : { payload: {} }) }, isStreaming(op));
          judge(`${method} ${path} ${parameter.name}=${JSON.stringify(value).slice(0, 40)}`, response, false);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it("never coerces an identifier: 12345 and [\"x\"] are refused, not stored as text", async () => {
    for (const id of [12345, ["coerced"]]) {
      const response = await api.inject({ method: "POST", url: "/v1/devices", headers: headers(), payload: { id } });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ code: "VALIDATION_FAILED" });
    }
    expect((await api.inject({ url: "/v1/devices/12345", headers: headers() })).statusCode).toBe(404);
    expect((await api.inject({ url: "/v1/devices/coerced", headers: headers() })).statusCode).toBe(404);
    // Query integers are still parsed, strictly.
    expect((await api.inject({ url: "/v1/devices?limit=2", headers: headers() })).statusCode).toBe(200);
  });

  it("an absurd token lifetime is a 400 problem, not a RangeError", async () => {
    const response = await api.inject({ method: "POST", url: "/v1/operators/tokens", headers: headers(), payload: { name: "forever", role: "auditor", expiresInSeconds: 99_999_999_999_999 } });
    expect(response.statusCode).toBe(400);
    expect(response.headers["content-type"]).toContain("application/problem+json");
    expect(response.json()).toMatchObject({ code: "VALIDATION_FAILED" });
    await expect(t.app.tokens.create({ name: "forever", role: "auditor", expiresInSeconds: 99_999_999_999_999 }, "test")).rejects.toMatchObject({ code: "VALIDATION_FAILED" });
  });
});
