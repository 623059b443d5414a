import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApi } from "../../src/api/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { startTelnetFixture, type Fixture } from "./fixtures.js";

const settings = { bodyLimitBytes: 65_536, authFailureLimit: 50, authFailureWindowSeconds: 60 };

describe("/v1/scans", () => {
  let t: TestApp;
  let api: FastifyInstance;
  let telnet: Fixture;
  let auditor: string;
  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });

  beforeAll(async () => {
    t = await createTestApp("sqlite");
    api = await buildApi(t.app, settings);
    telnet = await startTelnetFixture();
    auditor = (await t.app.tokens.create({ name: "auditor-token", role: "auditor" }, "test")).token;
  });
  afterAll(async () => {
    await telnet?.close();
    await api?.close();
    await t?.cleanup();
  });

  it("runs a scan inside the configured scope and stores it", async () => {
    const response = await api.inject({ method: "POST", url: "/v1/scans", headers: admin(), payload: { targets: ["127.0.0.1"], ports: String(telnet.port) } });
    expect(response.statusCode).toBe(201);
    const body = response.json() as { id: string; findings: Array<{ id: string; severity: string }> };
    expect(body.findings.map((f) => f.id).sort()).toEqual(["default-credentials-telnet", "telnet-plaintext"]);

    const listed = await api.inject({ url: "/v1/scans", headers: { authorization: `Bearer ${auditor}` } });
    expect(listed.statusCode).toBe(200);
    expect((listed.json() as Array<{ id: string }>)[0]!.id).toBe(body.id);
    const shown = await api.inject({ url: `/v1/scans/${body.id}`, headers: admin() });
    expect(shown.json()).toMatchObject({ id: body.id, counts: { critical: 1, high: 1 } });
  });

  it("refuses out-of-scope targets (403 problem+json), unknown runs (404) and auditors running scans (403)", async () => {
    const outside = await api.inject({ method: "POST", url: "/v1/scans", headers: admin(), payload: { targets: ["198.51.100.7"] } });
    expect(outside.statusCode).toBe(403);
    expect(outside.headers["content-type"]).toContain("application/problem+json");
    expect(outside.json()).toMatchObject({ code: "SCAN_TARGET_OUT_OF_SCOPE" });
    const unknown = await api.inject({ url: "/v1/scans/scan-0000000000000000", headers: admin() });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ code: "SCAN_NOT_FOUND" });
    const forbidden = await api.inject({ method: "POST", url: "/v1/scans", headers: { authorization: `Bearer ${auditor}` }, payload: { targets: ["127.0.0.1"] } });
    expect(forbidden.statusCode).toBe(403);
    expect(forbidden.json()).toMatchObject({ code: "AUTH_FORBIDDEN" });
    const widen = await api.inject({ method: "POST", url: "/v1/scans", headers: admin(), payload: { targets: ["10.0.0.1"], allow: ["10.0.0.0/8"] } });
    expect(widen.statusCode).toBe(400);
  });
});
