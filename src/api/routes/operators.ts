import type { FastifyInstance } from "fastify";
import { MAX_TOKEN_LIFETIME_SECONDS } from "../../identity/index.js";
import { actorOf } from "../auth.js";
import type { ApiServices } from "../services.js";

const token = {
  type: "object",
  properties: {
    id: { type: "string" },
    name: { type: "string" },
    role: { type: "string" },
    createdAt: { type: "string" },
    createdBy: { type: "string" },
    expiresAt: { type: ["string", "null"] },
    revokedAt: { type: ["string", "null"] },
    lastUsedAt: { type: ["string", "null"] },
  },
} as const;

/** /v1/operators/tokens: operator API tokens (the secret is returned once, at creation). */
export async function operatorRoutes(api: FastifyInstance, { services }: { services: ApiServices }): Promise<void> {
  api.post<{ Body: { name: string; role: string; expiresInSeconds?: number } }>(
    "/v1/operators/tokens",
    {
      // A token's role is a role assignment: minting a token needs roles:write as well.
      config: { action: "tokens:write", fields: { role: "roles:write" } },
      schema: {
        tags: ["operators"],
        summary: "Create an API token (shown once; its role needs roles:write)",
        body: {
          type: "object",
          required: ["name", "role"],
          additionalProperties: false,
          properties: { name: { type: "string", maxLength: 64 }, role: { type: "string", maxLength: 64 }, expiresInSeconds: { type: "integer", minimum: 1, maximum: MAX_TOKEN_LIFETIME_SECONDS } },
        },
        response: { 201: { type: "object", properties: { token: { type: "string" }, record: token } } },
      },
    },
    async (request, reply) => reply.code(201).send(await services.tokens.create(request.body, actorOf(request))),
  );

  api.get(
    "/v1/operators/tokens",
    { config: { action: "tokens:read" }, schema: { tags: ["operators"], summary: "List API tokens (never their secrets)", response: { 200: { type: "array", items: token } } } },
    async () => services.tokens.list(),
  );

  api.delete<{ Params: { name: string } }>(
    "/v1/operators/tokens/:name",
    {
      config: { action: "tokens:write" },
      schema: { tags: ["operators"], summary: "Revoke an API token", params: { type: "object", properties: { name: { type: "string", maxLength: 64 } } }, response: { 200: token } },
    },
    async (request) => services.tokens.revoke(request.params.name, actorOf(request)),
  );
}
