import type { FastifyInstance } from "fastify";
import { MoatError } from "../../errors.js";
import { CHECKS, SEVERITIES, type PostureService } from "../../posture/index.js";
import { actorOf } from "../auth.js";
import { MAX_PAGE_ITEMS } from "../../lib/page.js";

const checkId = { type: "string", minLength: 1, maxLength: 64, pattern: "^[a-z0-9-]+$" } as const;
const runId = { type: "object", required: ["id"], properties: { id: { type: "string", maxLength: 64 } } } as const;

/** /v1/posture: checks, stored runs and findings (auditor-readable), running the checks, suppressions. */
export async function postureRoutes(api: FastifyInstance, { services }: { services: { readonly posture: PostureService } }): Promise<void> {
  api.get("/v1/posture/checks", { config: { action: "posture:read" }, schema: { tags: ["posture"], summary: "Every posture check: id, title, usual severity, fix" } }, async () => CHECKS);

  api.get<{ Querystring: { limit?: number } }>(
    "/v1/posture/runs",
    {
      config: { action: "posture:read" },
      schema: {
        tags: ["posture"],
        summary: "Stored posture runs (summaries with per-check status and open findings by severity), newest first",
        querystring: { type: "object", additionalProperties: false, properties: { limit: { type: "integer", minimum: 1, maximum: MAX_PAGE_ITEMS } } },
      },
    },
    async (request) => services.posture.runs(request.query.limit),
  );

  api.get(
    "/v1/posture/latest",
    { config: { action: "posture:read" }, schema: { tags: ["posture"], summary: "The newest full run: per-check status and open findings by severity (the dashboard's posture facts)" } },
    async () => {
      const latest = await services.posture.latest();
      if (!latest) throw new MoatError("POSTURE_RUN_NOT_FOUND", "no posture run is stored yet");
      return latest;
    },
  );

  api.get<{ Params: { id: string }; Querystring: { check?: string; severity?: string; limit?: number; after?: number } }>(
    "/v1/posture/runs/:id/findings",
    {
      config: { action: "posture:read" },
      schema: {
        tags: ["posture"],
        summary: "One page of a run's findings, most severe first (`latest` for the newest full run)",
        params: runId,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            check: checkId,
            severity: { type: "string", enum: [...SEVERITIES] },
            limit: { type: "integer", minimum: 1, maximum: MAX_PAGE_ITEMS },
            after: { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
          },
        },
      },
    },
    async (request) => {
      const id = request.params.id === "latest" ? (await services.posture.latest())?.id : request.params.id;
      if (!id) throw new MoatError("POSTURE_RUN_NOT_FOUND", "no posture run is stored yet");
      return { run: id, ...(await services.posture.findings(id, request.query)) };
    },
  );

  api.post<{ Body: { check?: string } }>(
    "/v1/posture/runs",
    {
      config: { action: "posture:run" },
      schema: {
        tags: ["posture"],
        summary: "Run every posture check (or one) now and store the result (answers when it is done)",
        body: { type: "object", additionalProperties: false, properties: { check: checkId } },
      },
    },
    async (request, reply) => {
      const run = await services.posture.run({ actor: actorOf(request), ...(request.body?.check ? { check: request.body.check } : {}) });
      return reply.code(201).send(run);
    },
  );

  api.get<{ Querystring: { all?: boolean } }>(
    "/v1/posture/suppressions",
    {
      config: { action: "posture:read" },
      schema: { tags: ["posture"], summary: "Suppressions in force (all=true: also lapsed ones)", querystring: { type: "object", additionalProperties: false, properties: { all: { type: "boolean" } } } },
    },
    async (request) => services.posture.suppressions(request.query.all === true),
  );

  api.post<{ Body: { check: string; resource: string; reason: string; expiresAt: string } }>(
    "/v1/posture/suppressions",
    {
      config: { action: "posture:write" },
      schema: {
        tags: ["posture"],
        summary: "Accept one check's findings about one resource until expiresAt (audited as posture.suppressed)",
        body: {
          type: "object",
          required: ["check", "resource", "reason", "expiresAt"],
          additionalProperties: false,
          properties: {
            check: checkId,
            resource: { type: "string", minLength: 1, maxLength: 256 },
            reason: { type: "string", minLength: 1, maxLength: 1000 },
            expiresAt: { type: "string", format: "date-time", maxLength: 40 },
          },
        },
      },
    },
    async (request, reply) => reply.code(201).send(await services.posture.suppress({ ...request.body, actor: actorOf(request) })),
  );
}
