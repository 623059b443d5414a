import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from "fastify";
import type { Logger } from "pino";
import { TLS_SERVER_POLICY } from "../crypto/index.js";
import type { ErrorCode } from "../errors.js";
import { installOperatorAuth } from "./auth.js";
import { createApiMetrics } from "./metrics.js";
import { problemOf, sendProblem, toProblem } from "./problem.js";
import { EventStreamHub, type EventStreamOptions } from "./event-stream.js";
import { auditRoutes } from "./routes/audit.js";
import { eventRoutes } from "./routes/events.js";
import { dashboardDataRoutes } from "./routes/dashboard.js";
import { dashboardRoutes } from "./dashboard/routes.js";
import { DashboardSessions } from "./dashboard/sessions.js";
import { deviceRoutes } from "./routes/devices.js";
import { groupRoutes } from "./routes/groups.js";
import { alertRoutes } from "./routes/alerts.js";
import { estRoutes } from "./routes/est.js";
import { pkiRoutes } from "./routes/pki.js";
import { healthRoutes } from "./routes/health.js";
import { operatorRoutes } from "./routes/operators.js";
import { roleRoutes } from "./routes/roles.js";
import { tufRoutes } from "./routes/tuf.js";
import { scanRoutes } from "./routes/scans.js";
import { respondRoutes } from "./routes/respond.js";
import { sessionRoutes } from "./routes/sessions.js";
import { infoRoutes, type PublicEndpoints } from "./routes/info.js";
import { deviceSelfRoutes } from "./routes/device-self.js";
import { postureRoutes } from "./routes/posture.js";
import { complianceRoutes } from "./routes/compliance.js";
import type { ApiServices, ApiSettings } from "./services.js";

export interface ApiOptions extends ApiSettings {
  /** TLS material; absent only for in-process tests using inject(). */
  https?: { key: string; cert: string; ca?: string; requestCert?: boolean };
  logger?: Logger | false;
  /** Heartbeat, per-client buffer bound and client cap of /v1/events/stream (tests shorten them). */
  eventStream?: EventStreamOptions;
  /** What GET /v1/info advertises (moat serve sets it; default: the request's host, no broker). */
  endpoints?: PublicEndpoints;
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
/** The dashboard: only its own files, no inline script or style, no other origin (connect-src for its API calls and EventSource). */
const UI_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const DOCS_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'";

/** Decimal digits only: no sign, exponent, hex, blanks or fractions; 15 digits stay exact in a double. */
const QUERY_INTEGER = /^(0|[1-9][0-9]{0,14})$/;
const integerFieldsBySchema = new WeakMap<object, string[]>();

/**
 * Turns the query-string parameters that the route's schema declares as integers into numbers when
 * they are written strictly as decimal integers; anything else stays text, so the schema refuses it
 * (400) and its minimum/maximum bound the rest. Nothing else in a request is converted.
 */
function parseQueryIntegers(request: FastifyRequest): void {
  const schema = request.routeOptions.schema?.querystring as { properties?: Record<string, { type?: unknown }> } | undefined;
  if (!schema || typeof request.query !== "object" || request.query === null) return;
  let fields = integerFieldsBySchema.get(schema);
  if (!fields) {
    fields = Object.entries(schema.properties ?? {})
      .filter(([, property]) => property.type === "integer")
      .map(([name]) => name);
    integerFieldsBySchema.set(schema, fields);
  }
  const query = request.query as Record<string, unknown>;
  for (const name of fields) {
    const value = query[name];
    if (typeof value === "string" && QUERY_INTEGER.test(value)) query[name] = Number(value);
  }
}

function withSecurityHeaders(reply: FastifyReply, url: string): FastifyReply {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) reply.header(name, value);
  return reply.header("content-security-policy", url.startsWith("/docs") ? DOCS_CSP : url === "/ui" || url.startsWith("/ui/") ? UI_CSP : API_CSP);
}

/** RFC 6750 §3: every 401 names the scheme; a token that was sent and refused is `invalid_token`. */
function bearerChallenge(url: string, code: string): string {
  const realm = url.startsWith("/.well-known/est/") ? "moat-est" : "moat";
  return code === "AUTH_TOKEN_MISSING" || code === "PKI_ENROLL_AUTH_REQUIRED" ? `Bearer realm="${realm}"` : `Bearer realm="${realm}", error="invalid_token"`;
}

const CLIENT_ERRORS: Record<string, { status: number; code: ErrorCode; detail: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, code: "REQUEST_HEADERS_TOO_LARGE", detail: "the request headers are larger than the limit" },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, code: "REQUEST_TIMEOUT", detail: "the request was not received in time" },
};

/**
 * Answers a request that Node's HTTP parser refused as problem+json with the security headers, then
 * closes the connection (its framing can no longer be trusted).
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  if (socket.writable) {
    const known = CLIENT_ERRORS[error.code ?? ""] ?? { status: 400, code: "REQUEST_MALFORMED" as const, detail: "the request is not valid HTTP/1.1" };
    const body = JSON.stringify(problemOf(known.code, known.detail, known.status));
    const headers = { ...SECURITY_HEADERS, "content-security-policy": API_CSP, "content-type": "application/problem+json", "content-length": String(Buffer.byteLength(body)), connection: "close" };
    const head = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("");
    socket.write(`HTTP/1.1 ${known.status} ${STATUS_CODES[known.status]}\r\n${head}\r\n${body}`);
  }
  socket.destroy(error);
}

/** Builds the REST API: HTTPS, operator auth on every route, problem+json errors, OpenAPI at /docs. */
export async function buildApi(services: ApiServices, options: ApiOptions): Promise<FastifyInstance> {
  const serverOptions: FastifyServerOptions & { https?: unknown } = {
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: options.bodyLimitBytes,
    // No coercion: a body's id stays exactly what was sent (12345 or ["x"] is refused, never turned into
    // "12345" or "x"). Query-string integers, which arrive as text, are parsed by parseQueryIntegers.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // Errors the router raises before any route runs (bad URL encoding, an over-long path parameter)
    // are problems like every other error, with the same headers.
    frameworkErrors: (error, request, reply) => sendProblem(withSecurityHeaders(reply, request.url), toProblem(error, request)),
    // Requests Node's HTTP parser refuses (headers too large, malformed, too slow) never reach Fastify.
    clientErrorHandler: answerClientError,
    // Client certificates are requested (EST re-enrollment uses them) but never required here.
    ...(options.https
      ? { https: { key: options.https.key, cert: options.https.cert, ca: options.https.ca, requestCert: options.https.requestCert ?? true, rejectUnauthorized: false, ...TLS_SERVER_POLICY } }
      : {}),
  };
  const api = Fastify(serverOptions as FastifyServerOptions) as unknown as FastifyInstance;

  api.setErrorHandler((error, request, reply) => {
    const problem = toProblem(error, request);
    if (problem.status === 401 && !reply.hasHeader("www-authenticate")) reply.header("www-authenticate", bearerChallenge(request.url, problem.code));
    return sendProblem(reply, { ...problem, instance: request.url.split("?")[0] });
  });
  api.addHook("preValidation", async (request) => parseQueryIntegers(request));
  api.setNotFoundHandler((request, reply) => sendProblem(reply, problemOf("NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0]}`)));
  api.addHook("onSend", async (request, reply, payload) => {
    withSecurityHeaders(reply, request.url);
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

  const sessions = new DashboardSessions({ current: (id) => services.tokens.current(id), changes: services.store });
  api.addHook("onClose", async () => sessions.close());
  const auth = installOperatorAuth(api, services, options, sessions);
  const metrics = createApiMetrics(services);
  api.addHook("onResponse", async (request, reply) => {
    metrics.requests.inc({ route: request.routeOptions.url ?? "unmatched", status: String(reply.statusCode) });
  });
  await api.register(healthRoutes, { services, metrics });
  await api.register(deviceRoutes, { services });
  await api.register(groupRoutes, { services });
  await api.register(alertRoutes, { services });
  await api.register(operatorRoutes, { services });
  await api.register(auditRoutes, { services });
  // --- domain routes (pki, policy, broker, keys, firmware, scanner) ---
  await api.register(pkiRoutes, { services });
  await api.register(estRoutes, { services, settings: options });
  await api.register(scanRoutes, { services });
  await api.register(sessionRoutes, { services });
  await api.register(postureRoutes, { services });
  await api.register(complianceRoutes, { services });
  await api.register(roleRoutes, { services });
  await api.register(tufRoutes, { services });
  await api.register(respondRoutes, { services });
  const hub = new EventStreamHub({
    audit: services.audit,
    changes: services.store,
    stillValid: async (operator) => (await services.tokens.current(operator.id)) !== null,
    allows: (operator, action) => services.policy.allowsToken(operator, action),
  }, options.eventStream);
  // Open streams never end on their own; closing the server ends them first.
  api.addHook("preClose", async () => hub.close());
  await api.register(eventRoutes, { hub });
  // --- device SDK: public endpoints and the device's own status ---
  await api.register(infoRoutes, { trustDomain: services.trustDomain, endpoints: options.endpoints ?? { apiUrl: null, mqttUrl: null, mqttPort: () => null, jwtAudience: "moat-mqtt" } });
  await api.register(deviceSelfRoutes, { services });
  await api.register(dashboardDataRoutes, { services });
  await api.register(dashboardRoutes, { services, sessions, auth });
  await api.ready();
  return api;
}
