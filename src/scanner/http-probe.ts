/** HTTP probes: HEAD / to recognise a web server, and GET / with Basic credentials (RFC 7617). */
import { withSession, type Endpoint, type ProbeContext } from "./probe-context.js";

export interface HttpResponseHead {
  status: number;
  headers: Map<string, string>;
}

const MAX_HEAD = 16 * 1024;

/** Parses a response status line and headers (RFC 9112 §4, §5): null while incomplete, "malformed" when it is not HTTP. */
export function parseResponseHead(buffer: Buffer): HttpResponseHead | null | "malformed" {
  const prefix = buffer.subarray(0, 5).toString("latin1");
  if (!"HTTP/".startsWith(prefix.slice(0, Math.min(5, buffer.length)))) return "malformed";
  const end = buffer.indexOf("\r\n\r\n");
  const endLf = buffer.indexOf("\n\n");
  const stop = end >= 0 ? end : endLf;
  if (stop < 0) return buffer.length > MAX_HEAD ? "malformed" : null;
  const lines = buffer.subarray(0, stop).toString("latin1").split(/\r?\n/);
  const status = /^HTTP\/\d(?:\.\d)? (\d{3})(?: |$)/.exec(lines[0]!);
  if (!status) return "malformed";
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  return { status: Number(status[1]), headers };
}

async function request(ctx: ProbeContext, endpoint: Endpoint, method: "HEAD" | "GET", extraHeaders: string[], path = "/"): Promise<HttpResponseHead | null> {
  return withSession(ctx, endpoint, async (session) => {
    const host = endpoint.hostname ?? (endpoint.address.includes(":") ? `[${endpoint.address}]` : endpoint.address);
    session.write([`${method} ${path} HTTP/1.1`, `Host: ${host}:${endpoint.port}`, "User-Agent: moat-scanner", "Accept: */*", "Connection: close", ...extraHeaders, "", ""].join("\r\n"));
    let parsed: ReturnType<typeof parseResponseHead> = null;
    await session.waitFor((buffer) => (parsed = parseResponseHead(buffer)) !== null, ctx.readTimeoutMs);
    return parsed === null || parsed === "malformed" ? null : (parsed as HttpResponseHead);
  });
}

/** HEAD / ; null when the service does not answer as HTTP. */
export function httpHead(ctx: ProbeContext, endpoint: Endpoint): Promise<HttpResponseHead | null> {
  return request(ctx, endpoint, "HEAD", []);
}

/**
 * A certificate status service (CRL distribution point, OCSP responder) and nothing else: no page at
 * / but a DER CRL (`application/pkix-crl`, RFC 2585 §4.2) at /crl, the layout of Moat's PKI port.
 */
export async function isRevocationOnly(ctx: ProbeContext, endpoint: Endpoint, root: HttpResponseHead): Promise<boolean> {
  if (root.status < 400) return false;
  const crl = await request(ctx, endpoint, "HEAD", [], "/crl");
  return crl?.status === 200 && crl.headers.get("content-type")?.split(";")[0]?.trim().toLowerCase() === "application/pkix-crl";
}

/** GET / with Basic credentials; returns the status, or null on no HTTP answer. */
export async function httpBasicStatus(ctx: ProbeContext, endpoint: Endpoint, username: string, password: string): Promise<number | null> {
  const token = Buffer.from(`${username}:${password}`, "utf8").toString("base64");
  const head = await request(ctx, endpoint, "GET", [`Authorization: Basic ${token}`]);
  return head?.status ?? null;
}

/** The realm of a `WWW-Authenticate: Basic realm="…"` challenge, or null when Basic is not offered. */
export function basicRealm(head: HttpResponseHead): string | null {
  const challenge = head.headers.get("www-authenticate");
  if (!challenge || !/(^|,\s*)basic\b/i.test(challenge)) return null;
  return /realm="([^"]*)"/i.exec(challenge)?.[1] ?? "";
}
