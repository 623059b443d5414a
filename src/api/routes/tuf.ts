import type { FastifyInstance } from "fastify";
import { summarizeCampaign, type Campaign } from "../../firmware/index.js";
import { actorOf } from "../auth.js";
import type { ApiServices } from "../services.js";
import { MAX_PAGE_ITEMS } from "../../lib/page.js";

const idParam = { type: "object", required: ["id"], properties: { id: { type: "string", maxLength: 64, pattern: "^[A-Za-z0-9._-]+$" } } } as const;

function campaignView(campaign: Campaign) {
  const summary = summarizeCampaign(campaign);
  return {
    id: campaign.id,
    group: campaign.group,
    status: campaign.status,
    pauseReason: campaign.pauseReason ?? null,
    stages: campaign.stages,
    stage: campaign.stage,
    stagePercent: summary.stagePercent,
    maxFailureRate: campaign.maxFailureRate,
    failureRate: summary.failureRate,
    counts: summary.counts,
    release: campaign.release,
    createdAt: campaign.createdAt,
    updatedAt: campaign.updatedAt,
  };
}

/**
 * `/tuf/…`: Moat's TUF repository, public by design (TUF metadata is signed; the client trusts
 * signatures, not the transport), served over the API's HTTPS. `/v1/firmware` and `/v1/ota`: the
 * operator views and campaign controls.
 */
export async function tufRoutes(api: FastifyInstance, { services }: { services: ApiServices }): Promise<void> {
  const handler = services.firmware.tuf.handler("/tuf/");
  // Fastify answers HEAD for GET routes itself.
  api.route({
    method: "GET",
    url: "/tuf/*",
    config: { public: true },
    schema: { hide: true },
    handler: async (request, reply) => {
      reply.hijack();
      const handled = await handler(request.raw, reply.raw);
      if (!handled) reply.raw.writeHead(404).end();
    },
  });

  api.get(
    "/v1/firmware/keys",
    { config: { action: "firmware:read" }, schema: { tags: ["firmware"], summary: "List firmware root and signing keys (public parts only)" } },
    async () => ({ keys: await services.firmware.keys.list() }),
  );

  api.get(
    "/v1/firmware/revocations",
    { config: { public: true }, schema: { tags: ["firmware"], summary: "The newest root-signed signing-key revocation list (devices fetch it)" } },
    async (_request, reply) => {
      const list = await services.firmware.keys.revocationList();
      if (!list) return reply.code(204).send();
      return list.document;
    },
  );

  api.get(
    "/v1/ota/campaigns",
    {
      config: { action: "ota:read" },
      schema: {
        tags: ["ota"],
        summary: "List OTA campaigns, newest first",
        querystring: { type: "object", additionalProperties: false, properties: { status: { type: "string", enum: ["running", "paused", "aborted", "completed"] }, limit: { type: "integer", minimum: 1, maximum: MAX_PAGE_ITEMS } } },
      },
    },
    async (request) => {
      const query = request.query as { status?: string; limit?: number };
      return { campaigns: (await services.firmware.campaigns.list(query)).map(campaignView) };
    },
  );

  api.get(
    "/v1/ota/campaigns/:id",
    { config: { action: "ota:read" }, schema: { tags: ["ota"], summary: "One campaign with per-device status", params: idParam } },
    async (request) => {
      const campaign = await services.firmware.campaigns.get((request.params as { id: string }).id);
      return { ...campaignView(campaign), devices: campaign.devices };
    },
  );

  for (const verb of ["pause", "resume", "abort"] as const)
    api.post(
      `/v1/ota/campaigns/:id/${verb}`,
      { config: { action: "ota:write" }, schema: { tags: ["ota"], summary: `${verb[0]!.toUpperCase()}${verb.slice(1)} a campaign`, params: idParam } },
      async (request) => campaignView(await services.firmware.campaigns[verb]((request.params as { id: string }).id, actorOf(request))),
    );
}
