import type { FastifyInstance } from "fastify";
import { CATALOGUES, STANDARDS, coverageMatrix, reportHtml, reportMarkdown, verifyReportText, type ComplianceService } from "../../compliance/index.js";
import { actorOf } from "../auth.js";
import { MAX_PAGE_ITEMS } from "../../lib/page.js";

const standard = { type: "string", enum: [...STANDARDS] } as const;
const standardParam = { type: "object", required: ["standard"], properties: { standard } } as const;

/** /v1/compliance: catalogues, evaluation, signed reports, attestations and the dashboard's scores (auditor-readable). */
export async function complianceRoutes(api: FastifyInstance, { services }: { services: { readonly compliance: ComplianceService; readonly auditKeys: { verifierKey(): Promise<string> } } }): Promise<void> {
  api.get("/v1/compliance/standards", { config: { action: "compliance:read" }, schema: { tags: ["compliance"], summary: "The control catalogues: framework, edition, catalogue version, controls" } }, async () =>
    CATALOGUES.map((c) => ({ standard: c.standard, title: c.title, edition: c.edition, catalogueVersion: c.catalogueVersion, titles: c.titles, controls: c.controls })),
  );

  api.get("/v1/compliance/coverage", { config: { action: "compliance:read" }, schema: { tags: ["compliance"], summary: "Per framework: controls that are automatic, evidence-assisted, manual or not applicable" } }, async () => coverageMatrix());

  api.get(
    "/v1/compliance/scores",
    { config: { action: "compliance:read" }, schema: { tags: ["compliance"], summary: "Score and failing controls per framework, evaluated now (the dashboard's compliance facts)" } },
    async () => services.compliance.scores(),
  );

  // The dashboard's compliance view: one row per framework, and one framework's controls.
  api.get("/v1/compliance", { config: { action: "compliance:read" }, schema: { tags: ["compliance"], summary: "Per framework: id, name, score, passing and failing control counts, failing controls" } }, async () =>
    (await services.compliance.scores()).map((s) => ({ id: s.standard, name: s.title, score: s.score, passing: s.counts.pass, failing: s.counts.fail, manual: s.counts.manual, failingControls: s.failing })),
  );

  api.get<{ Params: { standard: string } }>(
    "/v1/compliance/:standard",
    { config: { action: "compliance:read" }, schema: { tags: ["compliance"], summary: "One framework's controls with status and evidence, evaluated now", params: standardParam } },
    async (request) => {
      const { catalogue, posture, controls } = await services.compliance.evaluate(request.params.standard);
      return { id: catalogue.standard, name: catalogue.title, posture: posture ? { run: posture.id, runAt: posture.runAt } : null, controls };
    },
  );

  api.get<{ Params: { standard: string } }>(
    "/v1/compliance/standards/:standard/controls",
    { config: { action: "compliance:read" }, schema: { tags: ["compliance"], summary: "Each control of a framework with its status and evidence, evaluated now", params: standardParam } },
    async (request) => {
      const { posture, controls } = await services.compliance.evaluate(request.params.standard);
      return { standard: request.params.standard, posture: posture ? { run: posture.id, runAt: posture.runAt } : null, controls };
    },
  );

  api.get<{ Querystring: { standard?: string; limit?: number } }>(
    "/v1/compliance/reports",
    {
      config: { action: "compliance:read" },
      schema: {
        tags: ["compliance"],
        summary: "Stored reports (score, SHA-256), newest first",
        querystring: { type: "object", additionalProperties: false, properties: { standard, limit: { type: "integer", minimum: 1, maximum: MAX_PAGE_ITEMS } } },
      },
    },
    async (request) => services.compliance.reports(request.query),
  );

  api.get<{ Params: { id: string }; Querystring: { format?: "json" | "html" | "md" } }>(
    "/v1/compliance/reports/:id",
    {
      config: { action: "compliance:read" },
      schema: {
        tags: ["compliance"],
        summary: "A stored report: the signed JSON exactly as written, or its HTML or Markdown rendering",
        params: { type: "object", required: ["id"], properties: { id: { type: "string", maxLength: 64 } } },
        querystring: { type: "object", additionalProperties: false, properties: { format: { type: "string", enum: ["json", "html", "md"] } } },
      },
    },
    async (request, reply) => {
      const text = await services.compliance.reportDocument(request.params.id);
      const format = request.query.format ?? "json";
      if (format === "json") return reply.type("application/json").send(text);
      const report = JSON.parse(text);
      const { hash } = verifyReportText(text, report.signature.verifierKey);
      if (format === "md") return reply.type("text/markdown; charset=utf-8").send(reportMarkdown(report, hash!));
      return reply.type("text/html; charset=utf-8").header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'").send(reportHtml(report, hash!));
    },
  );

  api.post<{ Body: { standard: string; fresh?: boolean } }>(
    "/v1/compliance/reports",
    {
      config: { action: "compliance:report" },
      schema: {
        tags: ["compliance"],
        summary: "Write a signed report for one framework (its hash goes into the audit log)",
        body: { type: "object", required: ["standard"], additionalProperties: false, properties: { standard, fresh: { type: "boolean" } } },
      },
    },
    async (request, reply) => {
      const { report, hash } = await services.compliance.report({ standard: request.body.standard, actor: actorOf(request), ...(request.body.fresh ? { fresh: true } : {}) });
      return reply.code(201).send({ id: report.id, sha256: hash, score: report.score });
    },
  );

  api.post<{ Body: { report: string } }>(
    "/v1/compliance/verify",
    {
      config: { action: "compliance:read" },
      schema: {
        tags: ["compliance"],
        summary: "Check a JSON report (as text) against this installation's audit key",
        body: { type: "object", required: ["report"], additionalProperties: false, properties: { report: { type: "string", minLength: 2, maxLength: 8 * 1024 * 1024 } } },
      },
    },
    async (request) => verifyReportText(request.body.report, await services.auditKeys.verifierKey()),
  );

  api.get<{ Querystring: { standard?: string; all?: boolean; limit?: number } }>(
    "/v1/compliance/attestations",
    {
      config: { action: "compliance:read" },
      schema: {
        tags: ["compliance"],
        summary: "Attestations in force (all=true: also expired), newest first",
        querystring: { type: "object", additionalProperties: false, properties: { standard, all: { type: "boolean" }, limit: { type: "integer", minimum: 1, maximum: MAX_PAGE_ITEMS } } },
      },
    },
    async (request) => services.compliance.attestations(request.query),
  );

  api.post<{ Body: { control: string; statement: string; evidenceUrl?: string; owner: string; expiresAt: string } }>(
    "/v1/compliance/attestations",
    {
      config: { action: "compliance:write" },
      schema: {
        tags: ["compliance"],
        summary: "Record a manual attestation for STANDARD:ID (audited as compliance.attested)",
        body: {
          type: "object",
          required: ["control", "statement", "owner", "expiresAt"],
          additionalProperties: false,
          properties: {
            control: { type: "string", minLength: 3, maxLength: 128 },
            statement: { type: "string", minLength: 1, maxLength: 4000 },
            evidenceUrl: { type: "string", minLength: 8, maxLength: 2000 },
            owner: { type: "string", minLength: 1, maxLength: 200 },
            expiresAt: { type: "string", format: "date-time", maxLength: 40 },
          },
        },
      },
    },
    async (request, reply) => reply.code(201).send(await services.compliance.attest({ ...request.body, actor: actorOf(request) })),
  );

  api.get(
    "/v1/compliance/psti-statement",
    { config: { action: "compliance:read" }, schema: { tags: ["compliance"], summary: "A draft UK PSTI statement of compliance (Markdown)" } },
    async (_request, reply) => reply.type("text/markdown; charset=utf-8").send(await services.compliance.pstiStatement()),
  );
}
