import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { MoatError } from "../errors.js";
import type { OperatorToken } from "../identity/index.js";
import { CSRF_HEADER, DashboardSessions, SESSION_COOKIE, cookieValue } from "./dashboard/sessions.js";
import { FailureWindow } from "./failure-window.js";
import type { ApiServices, ApiSettings } from "./services.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** The operator permission a route needs, e.g. `devices:read`. */
    action?: string;
    /**
     * Body fields whose effect needs a permission beyond `action`, checked when the field is present:
     * a device's `role` is a role assignment, so it needs `roles:write` whoever may edit the device.
     */
    fields?: Readonly<Record<string, string>>;
    /** A route anyone may call (health, docs, EST with its own authentication, CRL/OCSP). */
    public?: boolean;
    /** The route answers with a stream that stays open (server-sent events). */
    stream?: boolean;
  }
  interface FastifyRequest {
    operator?: OperatorToken;
  }
}

/** What one route demands of its caller, as registered (docs/permissions.md publishes the same table). */
export interface RouteAuthorization {
  method: string;
  url: string;
  public: boolean;
  action: string | null;
  fields: Readonly<Record<string, string>>;
  /** Answers with a stream that stays open (server-sent events). */
  stream: boolean;
}

const registered = new WeakMap<FastifyInstance, RouteAuthorization[]>();

/** Every route of an API built by buildApi with what it requires, in registration order. */
export function routeAuthorizations(api: FastifyInstance): readonly RouteAuthorization[] {
  return registered.get(api) ?? [];
}

/** The actor string events record for an operator. */
export function actorOf(request: FastifyRequest): string {
  return request.operator ? `operator:${request.operator.name}` : "anonymous";
}

/**
 * Every route declares `config.action` (checked against the token's role) or `config.public`.
 * A route that declares neither is refused at start-up, so nothing is open by accident.
 */
export function installOperatorAuth(api: FastifyInstance, services: ApiServices, settings: ApiSettings, sessions: DashboardSessions): OperatorAuthentication {
  const window = new FailureWindow(settings.authFailureLimit, settings.authFailureWindowSeconds * 1000);
  /** Resolves a presented token; a failure counts against the address and is a security event. */
  const authenticate = async <T>(request: FastifyRequest, reply: FastifyReply, check: () => Promise<T>): Promise<T> => {
    const address = request.ip;
    window.enforce(address, reply);
    try {
      return await check();
    } catch (error) {
      window.fail(address);
      const reason = error instanceof MoatError ? error.code : "error";
      await services.securityEvents.emit({ type: "auth.failed", severity: "low", actor: "anonymous", subject: address, data: { channel: "api", reason, address, route: request.routeOptions.url ?? request.url } });
      throw error;
    }
  };
  const routes: RouteAuthorization[] = [];
  registered.set(api, routes);

  api.addHook("onRoute", (route) => {
    const config = route.config as { action?: string; public?: boolean; fields?: Record<string, string>; stream?: boolean } | undefined;
    if (route.url.startsWith("/docs")) return; // swagger-ui's own routes, public documentation
    if (!config?.public && !config?.action) throw new Error(`route ${route.method} ${route.url} declares neither config.action nor config.public`);
    if (config.public && config.fields) throw new Error(`public route ${route.method} ${route.url} cannot demand field permissions`);
    for (const method of [route.method].flat())
      routes.push({ method, url: route.url, public: config.public === true, action: config.action ?? null, fields: config.fields ?? {}, stream: config.stream === true });
  });

  api.addHook("onRequest", async (request, reply) => {
    const config = request.routeOptions.config as { action?: string; public?: boolean };
    if (config.public || request.routeOptions.url?.startsWith("/docs")) return;
    const header = request.headers.authorization;
    const sessionId = header === undefined ? cookieValue(request.headers.cookie, SESSION_COOKIE) : undefined;
    if (header === undefined && sessionId === undefined) throw new MoatError("AUTH_TOKEN_MISSING", "send Authorization: Bearer <API token>");
    if (header !== undefined) {
      const match = /^Bearer ([^\s]+)$/.exec(header);
      request.operator = await authenticate(request, reply, async () => {
        if (!match) throw new MoatError("AUTH_TOKEN_INVALID", "the Authorization header must be 'Bearer <API token>'");
        return services.tokens.authenticate(match[1]!);
      });
    } else {
      const session = await authenticate(request, reply, async () => {
        const found = await sessions.resolve(sessionId!);
        if (!found) throw new MoatError("AUTH_SESSION_INVALID", "the dashboard session has ended (logged out, idle for 8 hours, or its token was revoked); log in again");
        return found;
      });
      request.operator = session.operator;
      if (!SAFE_METHODS.has(request.method)) await requireSameOrigin(services, request, session.csrf);
    }
    // No action means no route matched: an authenticated caller gets the 404, nobody else learns routes.
    if (config.action === undefined) return;
    // The token's own role plus any roles assigned to it (moat role assign ROLE --token NAME).
    await requirePermission(services, request, config.action);
  });

  // Field permissions are checked once the body has been parsed and validated, before any handler runs.
  api.addHook("preHandler", async (request) => {
    const fields = (request.routeOptions.config as { fields?: Record<string, string> }).fields;
    const body = request.body;
    if (!fields || !request.operator || body === null || typeof body !== "object") return;
    for (const [field, action] of Object.entries(fields)) if (Object.hasOwn(body, field)) await requirePermission(services, request, action, field);
  });
  return { authenticateToken: (request, reply, token) => authenticate(request, reply, () => services.tokens.authenticate(token)) };
}

/** What the dashboard's login borrows from the API's authentication: the same failure window and events. */
export interface OperatorAuthentication {
  authenticateToken(request: FastifyRequest, reply: FastifyReply, token: string): Promise<OperatorToken>;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * A cookie travels with every request the browser makes, whichever page caused it; so a state-changing
 * request on a session must prove it comes from the dashboard itself: its Origin is this server's, the
 * browser does not call it cross-site, and it carries the session's CSRF token in a header (which another
 * origin can neither read nor set). Refused with 403 `AUTH_CSRF_REFUSED` and an `acl.denied` event.
 */
export async function requireSameOrigin(services: Pick<ApiServices, "audit">, request: FastifyRequest, csrf: string): Promise<void> {
  const origin = request.headers.origin;
  const site = request.headers["sec-fetch-site"];
  const ownOrigin = `https://${request.headers.host ?? ""}`;
  const reason =
    origin !== ownOrigin ? `origin ${JSON.stringify(origin ?? null)} is not ${ownOrigin}`
    : site !== undefined && site !== "same-origin" ? `the browser marks it ${String(site)}`
    : !DashboardSessions.csrfMatches(csrf, typeof request.headers[CSRF_HEADER] === "string" ? (request.headers[CSRF_HEADER] as string) : undefined) ? `the ${CSRF_HEADER} header is missing or wrong`
    : null;
  if (reason === null) return;
  await services.audit.emit({ type: "acl.denied", severity: "medium", actor: actorOf(request), subject: "csrf", data: { channel: "ui", route: request.routeOptions.url, reason } });
  throw new MoatError("AUTH_CSRF_REFUSED", `refused a state-changing request on a dashboard session: ${reason}`);
}

/**
 * Refuses (403, with an `acl.denied` event) unless the caller's token holds `action`. Routes call it for
 * effects that depend on the stored state (moving a device into a group that carries roles).
 */
export async function requirePermission(services: Pick<ApiServices, "policy" | "audit">, request: FastifyRequest, action: string, field?: string): Promise<void> {
  const operator = request.operator;
  if (operator && services.policy.allowsToken(operator, action)) return;
  const route = request.routeOptions.url;
  await services.audit.emit({ type: "acl.denied", severity: "low", actor: actorOf(request), subject: action, data: { channel: "api", route, ...(field ? { field } : {}) } });
  const what = field ? `set ${field} (${action})` : action;
  throw new MoatError("AUTH_FORBIDDEN", `role ${operator?.role ?? "anonymous"} may not ${what}`, { detail: { action, ...(field ? { field } : {}) } });
}
