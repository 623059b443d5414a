import type { FastifyInstance, FastifyRequest } from "fastify";
import { MoatError } from "../errors.js";
import type { OperatorToken } from "../identity/index.js";
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
export function installOperatorAuth(api: FastifyInstance, services: ApiServices, settings: ApiSettings): void {
  const window = new FailureWindow(settings.authFailureLimit, settings.authFailureWindowSeconds * 1000);
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
    const address = request.ip;
    window.enforce(address, reply);
    const header = request.headers.authorization;
    if (!header) throw new MoatError("AUTH_TOKEN_MISSING", "send Authorization: Bearer <API token>");
    const match = /^Bearer ([^\s]+)$/.exec(header);
    try {
      if (!match) throw new MoatError("AUTH_TOKEN_INVALID", "the Authorization header must be 'Bearer <API token>'");
      request.operator = await services.tokens.authenticate(match[1]!);
    } catch (error) {
      window.fail(address);
      const reason = error instanceof MoatError ? error.code : "error";
      await services.securityEvents.emit({ type: "auth.failed", severity: "low", actor: "anonymous", subject: address, data: { channel: "api", reason, address, route: request.routeOptions.url ?? request.url } });
      throw error;
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
