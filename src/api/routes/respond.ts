import type { FastifyInstance } from "fastify";
import { MAX_PAGE_ITEMS } from "../../lib/page.js";
import { incidentMarkdown, parsePlaybook } from "../../respond/index.js";
import { actorOf, requirePermission } from "../auth.js";
import type { ApiServices } from "../services.js";

const nameParam = { type: "object", required: ["name"], additionalProperties: false, properties: { name: { type: "string", minLength: 1, maxLength: 64 } } } as const;
const idParam = { type: "object", required: ["id"], additionalProperties: false, properties: { id: { type: "string", minLength: 1, maxLength: 64 } } } as const;
const limit = { type: "integer", minimum: 1, maximum: MAX_PAGE_ITEMS } as const;
const severity = { type: "string", enum: ["info", "low", "medium", "high", "critical"] } as const;


/**
 * Detection response: playbooks (/v1/playbooks), the actions they took and their undo (/v1/responses),
 * notification targets and deliveries (/v1/notify), incidents (/v1/incidents). See docs/detect.md.
 */
export async function respondRoutes(api: FastifyInstance, { services }: { services: ApiServices }): Promise<void> {
  // --- playbooks ---
  api.get("/v1/playbooks", { config: { action: "playbooks:read" }, schema: { tags: ["respond"], summary: "List response playbooks" } }, async () =>
    (await services.respond.playbooks.list()).map((p) => ({ ...p.definition, updatedAt: p.updatedAt, updatedBy: p.updatedBy })),
  );

  api.get<{ Params: { name: string } }>(
    "/v1/playbooks/:name",
    { config: { action: "playbooks:read" }, schema: { tags: ["respond"], summary: "A playbook with its YAML as applied", params: nameParam } },
    async (request) => {
      const p = await services.respond.playbooks.get(request.params.name);
      return { ...p.definition, source: p.source, updatedAt: p.updatedAt, updatedBy: p.updatedBy };
    },
  );

  api.put<{ Body: { yaml: string } }>(
    "/v1/playbooks",
    {
      config: { action: "playbooks:write" },
      schema: {
        tags: ["respond"],
        summary: "Apply a playbook (YAML); one that quarantines or revokes in enforce mode also needs devices:write or certs:revoke",
        body: { type: "object", required: ["yaml"], additionalProperties: false, properties: { yaml: { type: "string", minLength: 1, maxLength: 16_384 } } },
      },
    },
    async (request, reply) => {
      // The effect decides: a playbook that will quarantine or revoke on its own needs the caller to hold those powers.
      const definition = parsePlaybook(request.body.yaml);
      if (definition.mode === "enforce" && definition.actions.includes("quarantine")) await requirePermission(services, request, "devices:write", "actions");
      if (definition.mode === "enforce" && definition.actions.includes("revoke")) await requirePermission(services, request, "certs:revoke", "actions");
      const { playbook, created } = await services.respond.playbooks.apply(request.body.yaml, actorOf(request));
      return reply.code(created ? 201 : 200).send({ ...playbook.definition, updatedAt: playbook.updatedAt, updatedBy: playbook.updatedBy });
    },
  );

  api.delete<{ Params: { name: string } }>(
    "/v1/playbooks/:name",
    { config: { action: "playbooks:write" }, schema: { tags: ["respond"], summary: "Delete a playbook", params: nameParam } },
    async (request, reply) => {
      await services.respond.playbooks.delete(request.params.name, actorOf(request));
      return reply.code(204).send();
    },
  );

  // --- response actions ---
  api.get<{ Querystring: { alert?: string; playbook?: string; limit?: number } }>(
    "/v1/responses",
    {
      config: { action: "responses:read" },
      schema: {
        tags: ["respond"],
        summary: "Response actions, newest first",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: { alert: { type: "string", minLength: 1, maxLength: 64 }, playbook: { type: "string", minLength: 1, maxLength: 64 }, limit },
        },
      },
    },
    async (request) =>
      services.respond.executor.listActions({
        ...(request.query.alert ? { alertId: request.query.alert } : {}),
        ...(request.query.playbook ? { playbook: request.query.playbook } : {}),
        ...(request.query.limit ? { limit: request.query.limit } : {}),
      }),
  );

  api.post<{ Params: { id: string } }>(
    "/v1/responses/:id/undo",
    { config: { action: "responses:write" }, schema: { tags: ["respond"], summary: "Undo an automatic action (a quarantine needs devices:write too; revocations cannot be undone)", params: idParam } },
    async (request) => {
      const action = await services.respond.executor.getAction(request.params.id);
      if (action.action === "quarantine") await requirePermission(services, request, "devices:write");
      return services.respond.executor.undo(request.params.id, actorOf(request));
    },
  );

  // --- notification targets and deliveries ---
  api.get("/v1/notify/targets", { config: { action: "notify:read" }, schema: { tags: ["respond"], summary: "Notification targets (never their secrets)" } }, async () =>
    services.respond.notifier.listTargets(),
  );

  api.post<{
    Body: { name: string; kind: "webhook" | "syslog" | "mqtt"; url?: string; host?: string; port?: number; transport?: "tls" | "tcp"; caPem?: string; facility?: number; prefix?: string; minSeverity?: string };
  }>(
    "/v1/notify/targets",
    {
      config: { action: "notify:write" },
      schema: {
        tags: ["respond"],
        summary: "Add a notification target; a webhook's signing secret is generated and returned once",
        body: {
          type: "object",
          required: ["name", "kind"],
          additionalProperties: false,
          properties: {
            name: { type: "string", minLength: 1, maxLength: 64 },
            kind: { type: "string", enum: ["webhook", "syslog", "mqtt"] },
            url: { type: "string", minLength: 1, maxLength: 2048 },
            host: { type: "string", minLength: 1, maxLength: 253 },
            port: { type: "integer", minimum: 1, maximum: 65_535 },
            transport: { type: "string", enum: ["tls", "tcp"] },
            caPem: { type: "string", minLength: 1, maxLength: 65_536 },
            facility: { type: "integer", minimum: 0, maximum: 23 },
            prefix: { type: "string", minLength: 1, maxLength: 160 },
            minSeverity: severity,
          },
        },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const actor = actorOf(request);
      const common = { name: b.name, ...(b.minSeverity ? { minSeverity: b.minSeverity } : {}) };
      if (b.kind === "webhook") {
        const { target, secret } = await services.respond.notifier.addWebhook({ ...common, url: b.url ?? "", ...(b.caPem ? { caPem: b.caPem } : {}) }, actor);
        return reply.code(201).send({ ...target, secret });
      }
      if (b.kind === "syslog")
        return reply.code(201).send(
          await services.respond.notifier.addSyslog(
            { ...common, host: b.host ?? "", port: b.port ?? 6514, transport: b.transport ?? "tls", ...(b.caPem ? { caPem: b.caPem } : {}), ...(b.facility !== undefined ? { facility: b.facility } : {}) },
            actor,
          ),
        );
      return reply.code(201).send(await services.respond.notifier.addMqtt({ ...common, ...(b.prefix ? { prefix: b.prefix } : {}) }, actor));
    },
  );

  api.delete<{ Params: { name: string } }>(
    "/v1/notify/targets/:name",
    { config: { action: "notify:write" }, schema: { tags: ["respond"], summary: "Remove a notification target and its queued deliveries", params: nameParam } },
    async (request, reply) => {
      await services.respond.notifier.removeTarget(request.params.name, actorOf(request));
      return reply.code(204).send();
    },
  );

  api.get<{ Querystring: { status?: "pending" | "delivered" | "dead"; limit?: number } }>(
    "/v1/notify/deliveries",
    {
      config: { action: "notify:read" },
      schema: {
        tags: ["respond"],
        summary: "Notification deliveries, newest first (status=dead: the dead letters)",
        querystring: { type: "object", additionalProperties: false, properties: { status: { type: "string", enum: ["pending", "delivered", "dead"] }, limit } },
      },
    },
    async (request) => services.respond.notifier.deliveries({ ...(request.query.status ? { status: request.query.status } : {}), ...(request.query.limit ? { limit: request.query.limit } : {}) }),
  );

  api.post<{ Params: { id: string } }>(
    "/v1/notify/deliveries/:id/redeliver",
    { config: { action: "notify:write" }, schema: { tags: ["respond"], summary: "Send a dead letter again", params: idParam } },
    async (request) => services.respond.notifier.redeliver(request.params.id, actorOf(request)),
  );

  // --- incidents ---
  api.get<{ Querystring: { status?: "open" | "closed"; limit?: number } }>(
    "/v1/incidents",
    {
      config: { action: "incidents:read" },
      schema: { tags: ["respond"], summary: "Incidents, newest first", querystring: { type: "object", additionalProperties: false, properties: { status: { type: "string", enum: ["open", "closed"] }, limit } } },
    },
    async (request) => services.respond.incidents.list({ ...(request.query.status ? { status: request.query.status } : {}), ...(request.query.limit ? { limit: request.query.limit } : {}) }),
  );

  api.post<{ Body: { title: string; alerts: string[]; severity?: string } }>(
    "/v1/incidents",
    {
      config: { action: "incidents:write" },
      schema: {
        tags: ["respond"],
        summary: "Open an incident grouping alerts",
        body: {
          type: "object",
          required: ["title", "alerts"],
          additionalProperties: false,
          properties: { title: { type: "string", minLength: 1, maxLength: 200 }, alerts: { type: "array", maxItems: 100, items: { type: "string", minLength: 1, maxLength: 64 } }, severity },
        },
      },
    },
    async (request, reply) =>
      reply
        .code(201)
        .send(await services.respond.incidents.open({ title: request.body.title, alertIds: request.body.alerts, ...(request.body.severity ? { severity: request.body.severity } : {}) }, actorOf(request))),
  );

  api.get<{ Params: { id: string }; Querystring: { format?: "json" | "md" } }>(
    "/v1/incidents/:id",
    {
      config: { action: "incidents:read" },
      schema: {
        tags: ["respond"],
        summary: "An incident with its alerts, actions and timeline from the audit log (format=md: the Markdown report)",
        params: idParam,
        querystring: { type: "object", additionalProperties: false, properties: { format: { type: "string", enum: ["json", "md"] } } },
      },
    },
    async (request, reply) => {
      const report = await services.respond.incidents.report(request.params.id);
      if (request.query.format === "md") return reply.type("text/markdown; charset=utf-8").send(incidentMarkdown(report));
      return report;
    },
  );

  api.post<{ Params: { id: string }; Body: { resolution?: string } }>(
    "/v1/incidents/:id/close",
    {
      config: { action: "incidents:write" },
      schema: {
        tags: ["respond"],
        summary: "Close an incident",
        params: idParam,
        body: { type: "object", additionalProperties: false, properties: { resolution: { type: "string", minLength: 1, maxLength: 2000 } } },
      },
    },
    async (request) => services.respond.incidents.close(request.params.id, request.body?.resolution, actorOf(request)),
  );
}
