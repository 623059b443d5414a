/**
 * The respond routes decide by effect: a token that may write playbooks still needs devices:write to
 * turn on automatic quarantine (certs:revoke for revocation), while a dry-run of the same playbook
 * needs neither. Also: a webhook's secret is in the 201 answer once and never listed; an incident's
 * report comes as Markdown with format=md.
 */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApi } from "../../src/api/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";

const settings = { bodyLimitBytes: 65_536, authFailureLimit: 1000, authFailureWindowSeconds: 60 };
let t: TestApp;
let api: FastifyInstance;
let playbookWriter: string;

beforeAll(async () => {
  t = await createTestApp("sqlite");
  api = await buildApi(t.app, settings);
  await t.app.policy.createRole("playbook-writer", [{ effect: "allow", action: "playbooks:write", resource: "*" }], "test");
  playbookWriter = (await t.app.tokens.create({ name: "pw", role: "playbook-writer" }, "test")).token;
});
afterAll(async () => {
  await api.close();
  await t.cleanup();
});

const as = (token: string) => ({ authorization: `Bearer ${token}` });

describe("respond routes", () => {
  it("refuses an enforcing quarantine playbook without devices:write, and stores nothing", async () => {
    const yaml = "name: contain\nrule: topic-probing\nactions: [quarantine]\n";
    const refused = await api.inject({ method: "PUT", url: "/v1/playbooks", headers: as(playbookWriter), payload: { yaml } });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: "AUTH_FORBIDDEN", detail_fields: { action: "devices:write", field: "actions" } });
    expect(await t.app.respond.playbooks.list()).toEqual([]);
    const revoke = await api.inject({ method: "PUT", url: "/v1/playbooks", headers: as(playbookWriter), payload: { yaml: "name: burn\nrule: topic-probing\nactions: [revoke]\n" } });
    expect(revoke.json()).toMatchObject({ code: "AUTH_FORBIDDEN", detail_fields: { action: "certs:revoke" } });

    const rehearsal = await api.inject({ method: "PUT", url: "/v1/playbooks", headers: as(playbookWriter), payload: { yaml: yaml + "mode: dry-run\n" } });
    expect(rehearsal.statusCode).toBe(201);
    const admin = await api.inject({ method: "PUT", url: "/v1/playbooks", headers: as(t.adminToken), payload: { yaml } });
    expect(admin.statusCode).toBe(200);
    expect(admin.json()).toMatchObject({ name: "contain", mode: "enforce", updatedBy: "operator:admin" });
    const bad = await api.inject({ method: "PUT", url: "/v1/playbooks", headers: as(t.adminToken), payload: { yaml: "name: x\nrule: y\nactions: [nuke]\n" } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: "PLAYBOOK_INVALID" });
  });

  it("returns a webhook secret once and never lists it", async () => {
    const added = await api.inject({ method: "POST", url: "/v1/notify/targets", headers: as(t.adminToken), payload: { name: "soc", kind: "webhook", url: "https://127.0.0.1:9/hook" } });
    expect(added.statusCode).toBe(201);
    const { secret } = added.json() as { secret: string };
    expect(secret).toMatch(/^whsec_/);
    const listed = await api.inject({ method: "GET", url: "/v1/notify/targets", headers: as(t.adminToken) });
    expect(listed.json()).toMatchObject([{ name: "soc", kind: "webhook" }]);
    expect(listed.body).not.toContain(secret.slice(6));
  });

  it("opens an incident and serves its report as JSON and as Markdown", async () => {
    await t.app.audit.emit({ type: "alert.raised", severity: "high", actor: "system:detect", subject: "d1", data: { alertId: "al-api-1", rule: "topic-probing", subject: { kind: "device", id: "d1" }, severity: "high", count: 1 } });
    const opened = await api.inject({ method: "POST", url: "/v1/incidents", headers: as(t.adminToken), payload: { title: "probe", alerts: ["al-api-1"] } });
    expect(opened.statusCode).toBe(201);
    const { id } = opened.json() as { id: string };
    const json = await api.inject({ method: "GET", url: `/v1/incidents/${id}`, headers: as(t.adminToken) });
    expect(json.json()).toMatchObject({ incident: { id, severity: "high" }, alerts: [{ alertId: "al-api-1" }] });
    const md = await api.inject({ method: "GET", url: `/v1/incidents/${id}?format=md`, headers: as(t.adminToken) });
    expect(md.headers["content-type"]).toMatch(/^text\/markdown/);
    expect(md.body).toContain(`# Incident ${id}: probe`);
    const closed = await api.inject({ method: "POST", url: `/v1/incidents/${id}/close`, headers: as(t.adminToken), payload: { resolution: "done" } });
    expect(closed.json()).toMatchObject({ status: "closed", resolution: "done", closedBy: "operator:admin" });
  });
});
