/**
 * Fuzz targets that need a running installation: the HTTPS API's JSON bodies (every route with a
 * request body, values generated from its schema in the published OpenAPI document, mixed with
 * wrong types and odd values) and the EST enrollment body. Both go through fastify's `inject` into the
 * built API over a fresh SQLite installation, so routing, schema validation, the error handler and the
 * domain behind each route all see the case. The property: never a 5xx, and every 4xx is a coded
 * problem+json (the API's form of a documented MoatError).
 */
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import fc from "fast-check";
import { buildApi } from "../../src/api/index.js";
import { ERROR_CODES } from "../../src/errors.js";
import { OID } from "../../src/pki/oids.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { typesOf, type Operation, type Schema } from "../helpers/openapi.js";
import { buildCsr } from "../pki-fixture.js";
import { bytesInput, oddValue } from "./mutations.js";
import type { FuzzHarness, FuzzTarget } from "./targets.js";

/** Path parameters that name things the installation has, so the body is what the route judges. */
const PATH_VALUES: Record<string, string> = { id: "fuzz-device", name: "fuzz-role", serial: "01", kind: "device", target: "fuzz-device" };

async function installation(): Promise<{ t: TestApp; api: FastifyInstance }> {
  const t = await createTestApp("sqlite");
  const api = await buildApi(t.app, { bodyLimitBytes: 1_048_576, authFailureLimit: 1_000_000_000, authFailureWindowSeconds: 60 });
  await t.app.devices.create({ id: "fuzz-device" }, "fuzz");
  return { t, api };
}

/** The API's answer must be a success or a coded problem+json 4xx. */
function judge(response: LightMyRequestResponse): void {
  if (response.statusCode >= 500) throw new Error(`status ${response.statusCode}: ${response.body.slice(0, 300)}`);
  if (response.statusCode < 400) return;
  const problem = response.headers["content-type"]?.toString().startsWith("application/problem+json") ?? false;
  const code = problem ? (response.json() as { code?: unknown }).code : undefined;
  if (typeof code !== "string" || !(code in ERROR_CODES)) throw new Error(`status ${response.statusCode} without a documented code: ${response.body.slice(0, 300)}`);
}

/** Values of the schema's type (sometimes just outside its bounds), or odd values of any type. */
function valueFor(schema: Schema, depth = 0): fc.Arbitrary<unknown> {
  const types = typesOf(schema);
  const typed: fc.Arbitrary<unknown>[] = [];
  if (schema.enum) typed.push(fc.constantFrom(...schema.enum));
  if (types.includes("string")) typed.push(fc.string({ maxLength: (schema.maxLength ?? 64) + 2 }), fc.constantFrom("fuzz-device", "fuzz-role", "admin", "device", "1h", "devices/fuzz-device/#"));
  if (types.includes("integer") || types.includes("number")) typed.push(fc.integer({ min: (schema.minimum ?? -1_000_000) - 1, max: (schema.maximum ?? 1_000_000) + 1 }));
  if (types.includes("boolean")) typed.push(fc.boolean());
  if (types.includes("null")) typed.push(fc.constant(null));
  if (types.includes("array") && depth < 3) typed.push(fc.array(valueFor(schema.items ?? {}, depth + 1), { maxLength: Math.min(schema.maxItems ?? 4, 4) + 1 }));
  if (types.includes("object") && schema.properties && depth < 3) typed.push(objectFor(schema, depth + 1));
  if (typed.length === 0) return oddValue;
  return fc.oneof({ weight: 15, arbitrary: fc.oneof(...typed) }, { weight: 1, arbitrary: oddValue });
}

function objectFor(schema: Schema, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const fields = Object.fromEntries(Object.entries(properties).map(([k, s]) => [k, valueFor(s, depth)]));
  return fc
    .tuple(fc.record(fields, { requiredKeys: Object.keys(properties).filter((k) => required.has(k)) }), fc.dictionary(fc.string({ maxLength: 6 }), oddValue, { maxKeys: 1 }), fc.nat(9))
    .map(([known, extra, drop]) => {
      const body: Record<string, unknown> = { ...known, ...(drop === 0 ? extra : {}) };
      // Now and then a required field goes missing.
      if (drop === 1 && required.size > 0) delete body[[...required][0]!];
      return body;
    });
}

export const apiBodiesTarget: FuzzTarget = {
  name: "api-bodies",
  entry: "HTTPS API: every route with a JSON body (fastify inject into the built API, admin token)",
  async setup() {
    const { t, api } = await installation();
    const spec = (await api.inject({ url: "/docs/json" })).json() as { paths: Record<string, Record<string, Operation>> };
    const operations = Object.entries(spec.paths).flatMap(([path, ops]) =>
      Object.entries(ops).flatMap(([method, op]) => {
        const schema = op.requestBody?.content?.["application/json"]?.schema;
        return schema ? [{ method: method.toUpperCase() as InjectOptions["method"], url: path.replace(/\{(\w+)\}/g, (_, n: string) => PATH_VALUES[n] ?? "x"), schema }] : [];
      }),
    );
    if (operations.length === 0) throw new Error("the OpenAPI document lists no route with a JSON body");
    const headers = { authorization: `Bearer ${t.adminToken}`, "content-type": "application/json" };
    const body = fc.oneof(
      { weight: 8, arbitrary: fc.nat(operations.length - 1).chain((i) => objectFor(operations[i]!.schema, 0).map((b) => ({ i, payload: JSON.stringify(b) }))) },
      { weight: 1, arbitrary: fc.tuple(fc.nat(operations.length - 1), oddValue).map(([i, v]) => ({ i, payload: JSON.stringify(v) ?? "null" })) },
      { weight: 1, arbitrary: fc.tuple(fc.nat(operations.length - 1), fc.string({ maxLength: 64, unit: "binary" })).map(([i, payload]) => ({ i, payload })) },
    );
    return {
      input: body,
      run: async ({ i, payload }: { i: number; payload: string }) => {
        const op = operations[i]!;
        judge(await api.inject({ method: op.method, url: op.url, headers, payload }));
      },
      close: async () => {
        await api.close();
        await t.cleanup();
      },
    } satisfies FuzzHarness<{ i: number; payload: string }> as FuzzHarness;
  },
};

export const estBodyTarget: FuzzTarget = {
  name: "est-body",
  // simplereenroll is left out: without the TLS client certificate (inject has none) it refuses before
  // reading the body; the certificate target covers its certificate parser.
  entry: "EST simpleenroll body (base64 DER PKCS#10, or PEM) with and without an enrollment token",
  async setup() {
    const { t, api } = await installation();
    const { token } = await t.app.enrollmentTokens.create("fuzz-device", 24 * 3_600_000, "fuzz");
    // The samples name another device, so even an intact one is refused (PKI_CSR_SUBJECT_MISMATCH) and
    // the one-time token stays unused for every case.
    const samples = [buildCsr({ subject: [[OID.commonName, "other-device"]] }).der, buildCsr({ keyType: "ed25519", subject: [[OID.commonName, "other-device"]] }).der];
    const wrap = fc.tuple(bytesInput(samples), fc.constantFrom("base64", "base64-lines", "pem", "raw"), fc.constantFrom("application/pkcs10", "text/plain", "application/pkcs10-mime"), fc.nat(7));
    return {
      input: wrap,
      run: async ([der, form, contentType, noToken]: [Buffer, string, string, number]) => {
        const base64 = der.toString("base64");
        const payload =
          form === "base64" ? base64 : form === "base64-lines" ? base64.replace(/(.{64})/g, "$1\r\n") : form === "pem" ? `-----BEGIN CERTIFICATE REQUEST-----\n${base64}\n-----END CERTIFICATE REQUEST-----\n` : der;
        const authorization = noToken === 0 ? {} : { authorization: `Bearer ${token}` };
        judge(await api.inject({ method: "POST", url: "/.well-known/est/simpleenroll", headers: { "content-type": contentType, ...authorization }, payload }));
      },
      close: async () => {
        await api.close();
        await t.cleanup();
      },
    } satisfies FuzzHarness<[Buffer, string, string, number]> as FuzzHarness;
  },
};
