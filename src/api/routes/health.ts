import type { FastifyInstance } from "fastify";
import type { ApiMetrics } from "../metrics.js";
import { sendProblem, problemOf } from "../problem.js";
import type { ApiServices } from "../services.js";

/** Liveness, readiness and Prometheus metrics. */
export async function healthRoutes(api: FastifyInstance, { services, metrics }: { services: ApiServices; metrics: ApiMetrics }): Promise<void> {
  api.get("/healthz", { config: { public: true }, schema: { tags: ["health"], summary: "Liveness" } }, async () => ({ status: "ok" }));

  api.get("/readyz", { config: { public: true }, schema: { tags: ["health"], summary: "Readiness (database answers)" } }, async (_request, reply) => {
    if (await services.ready()) return { status: "ready" };
    return sendProblem(reply, problemOf("STORE_UNREACHABLE", "the database does not answer"));
  });

  api.get("/metrics", { config: { action: "metrics:read" }, schema: { tags: ["health"], summary: "Prometheus metrics" } }, async (_request, reply) => {
    const parts = [await metrics.registry.metrics()];
    for (const source of services.metricsSources) parts.push(await source());
    return reply.type(metrics.registry.contentType).send(parts.join(""));
  });
}
