/**
 * The web dashboard under /ui/: its files (plain ES modules, served by Moat itself, never a CDN) and its
 * session: log in with an API token, read who is logged in with what permissions, log out. Every data
 * call the dashboard makes goes to the ordinary /v1 API with the session cookie, so the API's permission
 * checks apply to it exactly as to a token (an auditor's "suspend" is refused by the API, not only hidden).
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { MoatError } from "../../errors.js";
import type { OperatorToken } from "../../identity/index.js";
import { requireSameOrigin, type OperatorAuthentication } from "../auth.js";
import type { ApiServices } from "../services.js";
import { cookieValue, DashboardSessions, SESSION_COOKIE, SESSION_IDLE_MS } from "./sessions.js";

/** The permissions the dashboard shows or hides views and actions by (the API decides anyway). */
export const DASHBOARD_PERMISSIONS = [
  "devices:read",
  "devices:write",
  "certs:read",
  "certs:issue",
  "certs:revoke",
  "audit:read",
  "scans:read",
  "ota:read",
  "ota:write",
  "sessions:read",
  "events:read",
  "alerts:read",
  "alerts:write",
  "incidents:read",
  "posture:read",
  "compliance:read",
  "firmware:read",
] as const;

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/**
 * The dashboard's files live in `ui/` at the package root. This module runs from src/ (tests), dist/ (the
 * library layout) or a CLI bundle chunk, so the root is found by walking up to the folder holding ui/.
 */
function uiDirectory(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, "ui", "index.html"))) return join(dir, "ui");
    dir = dirname(dir);
  }
  throw new Error("the dashboard files (ui/index.html) are not installed beside this moat");
}

/** Third-party browser modules, served from the installed npm package (pinned in package.json). */
function vendorFiles(): Record<string, string> {
  const require = createRequire(import.meta.url);
  return {
    "uPlot.esm.js": require.resolve("uplot/dist/uPlot.esm.js"),
    "uPlot.min.css": require.resolve("uplot/dist/uPlot.min.css"),
  };
}

function cookie(value: string, maxAgeSeconds: number): string {
  return `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age=${maxAgeSeconds}`;
}

export async function dashboardRoutes(
  api: FastifyInstance,
  { services, sessions, auth }: { services: ApiServices; sessions: DashboardSessions; auth: OperatorAuthentication },
): Promise<void> {
  const root = uiDirectory();
  const vendor = vendorFiles();
  const files = new Map<string, Buffer>();
  const load = (path: string): Buffer | null => {
    let body = files.get(path);
    if (!body) {
      if (!existsSync(path)) return null;
      body = readFileSync(path);
      files.set(path, body);
    }
    return body;
  };

  const view = (operator: OperatorToken, csrf: string) => ({
    operator: { name: operator.name, role: operator.role },
    csrf,
    idleMinutes: SESSION_IDLE_MS / 60_000,
    allowed: Object.fromEntries(DASHBOARD_PERMISSIONS.map((p) => [p, services.policy.allowsToken(operator, p)])),
  });

  const session = async (request: FastifyRequest) => {
    const id = cookieValue(request.headers.cookie, SESSION_COOKIE);
    const found = id === undefined ? null : await sessions.resolve(id);
    if (!found || id === undefined) throw new MoatError("AUTH_SESSION_INVALID", "no dashboard session: log in with an API token");
    return { id, ...found };
  };

  const sessionSchema = {
    type: "object",
    properties: {
      operator: { type: "object", properties: { name: { type: "string" }, role: { type: "string" } } },
      csrf: { type: "string" },
      idleMinutes: { type: "integer" },
      allowed: { type: "object", additionalProperties: { type: "boolean" } },
    },
  } as const;

  api.post<{ Body: { token: string } }>(
    "/ui/session",
    {
      config: { public: true },
      schema: {
        tags: ["dashboard"],
        summary: "Log in to the dashboard with an API token (sets the HttpOnly session cookie; same-origin only)",
        body: { type: "object", required: ["token"], additionalProperties: false, properties: { token: { type: "string", minLength: 1, maxLength: 128 } } },
        response: { 200: sessionSchema },
      },
    },
    async (request, reply) => {
      // Login CSRF: another site must not log a browser into an account of its choosing.
      const origin = request.headers.origin;
      if (origin !== `https://${request.headers.host ?? ""}`)
        throw new MoatError("AUTH_CSRF_REFUSED", `refused a dashboard login from origin ${JSON.stringify(origin ?? null)}`);
      const operator = await auth.authenticateToken(request, reply, request.body.token);
      const { id, csrf } = sessions.create(operator);
      await services.audit.emit({ type: "operator.session_started", severity: "info", actor: `operator:${operator.name}`, subject: operator.name, data: { channel: "ui", address: request.ip } });
      reply.header("set-cookie", cookie(id, SESSION_IDLE_MS / 1000));
      return view(operator, csrf);
    },
  );

  api.get(
    "/ui/session",
    { config: { public: true }, schema: { tags: ["dashboard"], summary: "The dashboard session: operator, role, CSRF token and permissions", response: { 200: sessionSchema } } },
    async (request) => {
      const found = await session(request);
      return view(found.operator, found.csrf);
    },
  );

  api.delete(
    "/ui/session",
    { config: { public: true }, schema: { tags: ["dashboard"], summary: "Log out of the dashboard (needs the session's CSRF token)" } },
    async (request, reply) => {
      const found = await session(request);
      request.operator = found.operator;
      await requireSameOrigin(services, request, found.csrf);
      sessions.end(found.id);
      await services.audit.emit({ type: "operator.session_ended", severity: "info", actor: `operator:${found.operator.name}`, subject: found.operator.name, data: { channel: "ui" } });
      reply.header("set-cookie", cookie("", 0));
      return reply.code(204).send();
    },
  );

  const sendFile = (reply: FastifyReply, path: string | undefined) => {
    const body = path === undefined ? null : load(path);
    if (!body || path === undefined) throw new MoatError("NOT_FOUND", "no such dashboard file");
    return reply.type(CONTENT_TYPES[extname(path)] ?? "application/octet-stream").send(body);
  };

  api.get("/ui", { config: { public: true }, schema: { hide: true } }, async (_request, reply) => reply.redirect("/ui/", 308));
  api.get<{ Params: { "*": string } }>("/ui/*", { config: { public: true }, schema: { hide: true } }, async (request, reply) => {
    const path = request.params["*"];
    if (path === "" || !path.includes(".")) return sendFile(reply, join(root, "index.html"));
    if (path.startsWith("vendor/")) return sendFile(reply, vendor[path.slice("vendor/".length)]);
    const file = resolve(root, path);
    // Only files inside ui/ (no ../), and only the kinds the dashboard ships.
    if (!file.startsWith(root + sep) || !(extname(file) in CONTENT_TYPES)) throw new MoatError("NOT_FOUND", "no such dashboard file");
    return sendFile(reply, file);
  });
}
