import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import type { Logger } from "pino";
import { TLS_SERVER_POLICY } from "../crypto/index.js";
import { installOperatorAuth } from "./auth.js";
import { Counter } from "./metrics.js";
import { problemOf, sendProblem, toProblem } from "./problem.js";
import { auditRoutes } from "./routes/audit.js";
import { deviceRoutes } from "./routes/devices.js";
import { estRoutes } from "./routes/est.js";
import { pkiRoutes } from "./routes/pki.js";
import { healthRoutes } from "./routes/health.js";
import { operatorRoutes } from "./routes/operators.js";
import { roleRoutes } from "./routes/roles.js";
import { tufRoutes } from "./routes/tuf.js";
import { scanRoutes } from "./routes/scans.js";
import type { ApiServices, ApiSettings } from "./services.js";

export interface ApiOptions extends ApiSettings {
  /** TLS material; absent only for in-process tests using inject(). */
  https?: { key: string; cert: string; ca?: string; requestCert?: boolean };
  logger?: Logger | false;
}

const SECURITY_HEADERS: Record<string, string> = {
  "strict-transport-security": "max-age=31536000",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-resource-policy": "same-origin",
  "cache-control": "no-store",
};
const API_CSP = "default-src 'none'; frame-ancestors 'none'";
const DOCS_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'";

/** Builds the REST API: HTTPS, operator auth on every route, problem+json errors, OpenAPI at /docs. */
export async function buildApi(services: ApiServices, options: ApiOptions): Promise<FastifyInstance> {
  const serverOptions: FastifyServerOptions & { https?: unknown } = {
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: options.bodyLimitBytes,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: "array", allErrors: false } },
    // Client certificates are requested (EST re-enrollment uses them) but never required here.
    ...(options.https
      ? { https: { key: options.https.key, cert: options.https.cert, ca: options.https.ca, requestCert: options.https.requestCert ?? true, rejectUnauthorized: false, ...TLS_SERVER_POLICY } }
      : {}),
  };
  const api = Fastify(serverOptions as FastifyServerOptions) as unknown as FastifyInstance;

  api.setErrorHandler((error, request, reply) => {
    const problem = toProblem(error, request);
    return sendProblem(reply, { ...problem, instance: request.url.split("?")[0] });
  });
  api.setNotFoundHandler((request, reply) => sendProblem(reply, problemOf("NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0]}`)));
  api.addHook("onSend", async (request, reply, payload) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) reply.header(name, value);
    reply.header("content-security-policy", request.url.startsWith("/docs") ? DOCS_CSP : API_CSP);
    return payload;
  });

  await api.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: { title: "Moat API", version: "1", description: "Security control plane for IoT fleets. Authenticate with `Authorization: Bearer <API token>`." },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
  });
  await api.register(swaggerUi, { routePrefix: "/docs" });

  installOperatorAuth(api, services, options);
  const requests = new Counter("moat_http_requests_total", "HTTP requests by route and status");
  api.addHook("onResponse", async (request, reply) => {
    requests.inc({ route: request.routeOptions.url ?? "unmatched", status: String(reply.statusCode) });
  });
  await api.register(healthRoutes, { services, requests });
  await api.register(deviceRoutes, { services });
  await api.register(operatorRoutes, { services });
  await api.register(auditRoutes, { services });
  // --- domain routes (pki, policy, broker, keys, firmware, scanner) ---
  await api.register(pkiRoutes, { services });
  await api.register(estRoutes, { services });
  await api.register(scanRoutes, { services });
  await api.register(roleRoutes, { services });
  await api.register(tufRoutes, { services });
  await api.ready();
  return api;
}
