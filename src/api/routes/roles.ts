import type { FastifyInstance } from "fastify";
import type { AssignmentKind, Permission } from "../../policy/index.js";
import { actorOf } from "../auth.js";
import type { ApiServices } from "../services.js";

const rule = {
  type: "object",
  properties: { effect: { type: "string" }, action: { type: "string" }, resource: { type: "string" } },
} as const;
const assignment = {
  type: "object",
  properties: { role: { type: "string" }, kind: { type: "string" }, target: { type: "string" }, createdAt: { type: "string" }, createdBy: { type: "string" } },
} as const;
const role = {
  type: "object",
  properties: {
    name: { type: "string" },
    description: { type: "string" },
    rules: { type: "array", items: rule },
    builtin: { type: "boolean" },
    createdAt: { type: "string" },
    updatedAt: { type: "string" },
    assignments: { type: "array", items: assignment },
  },
} as const;
const deciding = {
  type: ["object", "null"],
  properties: { role: { type: "string" }, index: { type: "integer" }, effect: { type: "string" }, action: { type: "string" }, resource: { type: "string" } },
} as const;
const nameParam = { type: "object", required: ["name"], properties: { name: { type: "string", maxLength: 64 } } } as const;
const kinds = ["device", "group", "token"] as const;

/** /v1/roles and /v1/policy: roles, assignments, the policy simulator and lint. */
export async function roleRoutes(api: FastifyInstance, { services }: { services: ApiServices }): Promise<void> {
  const policy = services.policy;

  api.get(
    "/v1/roles",
    { config: { action: "roles:read" }, schema: { tags: ["policy"], summary: "List roles with their rules and assignments", response: { 200: { type: "array", items: role } } } },
    async () => policy.listRoles(),
  );

  api.get<{ Params: { name: string } }>(
    "/v1/roles/:name",
    { config: { action: "roles:read" }, schema: { tags: ["policy"], summary: "Show one role", params: nameParam, response: { 200: role } } },
    async (request) => policy.getRole(request.params.name),
  );

  api.post<{ Body: { name: string; description?: string; rules: Permission[] } }>(
    "/v1/roles",
    {
      config: { action: "roles:write" },
      schema: {
        tags: ["policy"],
        summary: "Create a role; a rule without effect allows",
        body: {
          type: "object",
          required: ["name", "rules"],
          additionalProperties: false,
          properties: {
            name: { type: "string", maxLength: 64 },
            description: { type: "string", maxLength: 500 },
            rules: {
              type: "array",
              maxItems: 1000,
              items: {
                type: "object",
                required: ["action"],
                additionalProperties: false,
                properties: { effect: { type: "string", enum: ["allow", "deny"] }, action: { type: "string", maxLength: 80 }, resource: { type: "string", maxLength: 65535 } },
              },
            },
          },
        },
        response: { 201: role },
      },
    },
    async (request, reply) => {
      const { name, description, rules } = request.body;
      const created = await policy.createRole(name, rules, actorOf(request), description === undefined ? {} : { description });
      return reply.code(201).send(created);
    },
  );

  api.delete<{ Params: { name: string } }>(
    "/v1/roles/:name",
    {
      config: { action: "roles:write" },
      schema: {
        tags: ["policy"],
        summary: "Delete a custom role and its assignments",
        params: nameParam,
        response: { 200: { type: "object", properties: { role: { type: "string" }, removedAssignments: { type: "array", items: assignment } } } },
      },
    },
    async (request) => policy.deleteRole(request.params.name, actorOf(request)),
  );

  api.post<{ Params: { name: string }; Body: { kind: AssignmentKind; target: string } }>(
    "/v1/roles/:name/assignments",
    {
      config: { action: "roles:write" },
      schema: {
        tags: ["policy"],
        summary: "Assign the role to a device, a device group or an operator token (201 when new, 200 when it existed)",
        params: nameParam,
        body: {
          type: "object",
          required: ["kind", "target"],
          additionalProperties: false,
          properties: { kind: { type: "string", enum: [...kinds] }, target: { type: "string", maxLength: 128 } },
        },
        response: { 200: assignment, 201: assignment },
      },
    },
    async (request, reply) => {
      const { assignment: record, created } = await policy.assignRole(request.params.name, request.body, actorOf(request));
      return reply.code(created ? 201 : 200).send(record);
    },
  );

  api.delete<{ Params: { name: string; kind: AssignmentKind; target: string } }>(
    "/v1/roles/:name/assignments/:kind/:target",
    {
      config: { action: "roles:write" },
      schema: {
        tags: ["policy"],
        summary: "Remove an assignment",
        params: {
          type: "object",
          required: ["name", "kind", "target"],
          properties: { name: { type: "string", maxLength: 64 }, kind: { type: "string", enum: [...kinds] }, target: { type: "string", maxLength: 128 } },
        },
        response: { 204: { type: "null" } },
      },
    },
    async (request, reply) => {
      const { name, kind, target } = request.params;
      await policy.unassignRole(name, { kind, target }, actorOf(request));
      return reply.code(204).send();
    },
  );

  api.post<{ Body: { device: string; action: string; topic: string; certCn?: string } }>(
    "/v1/policy/check",
    {
      config: { action: "policy:read" },
      schema: {
        tags: ["policy"],
        summary: "Simulate a decision: may the device publish/subscribe/receive on the topic, and which rule decides",
        body: {
          type: "object",
          required: ["device", "action", "topic"],
          additionalProperties: false,
          properties: {
            device: { type: "string", maxLength: 128 },
            action: { type: "string", enum: ["publish", "subscribe", "receive"] },
            topic: { type: "string", maxLength: 65535 },
            certCn: { type: "string", maxLength: 256 },
          },
        },
        response: {
          200: {
            type: "object",
            properties: {
              allow: { type: "boolean" },
              reason: { type: "string" },
              rule: deciding,
              roles: { type: "array", items: { type: "string" } },
              action: { type: "string" },
              topic: { type: "string" },
              device: { type: "object", properties: { id: { type: "string" }, group: { type: ["string", "null"] }, status: { type: "string" }, role: { type: "string" } } },
            },
          },
        },
      },
    },
    async (request) => {
      const { device, action, topic, certCn } = request.body;
      return policy.explain(device, action, topic, certCn === undefined ? {} : { certCn });
    },
  );

  api.get(
    "/v1/policy/lint",
    {
      config: { action: "policy:read" },
      schema: {
        tags: ["policy"],
        summary: "Overly permissive rules",
        response: {
          200: {
            type: "array",
            items: {
              type: "object",
              properties: {
                severity: { type: "string" },
                code: { type: "string" },
                role: { type: "string" },
                index: { type: "integer" },
                rule: { type: "string" },
                message: { type: "string" },
              },
            },
          },
        },
      },
    },
    async () => policy.lint(),
  );
}
