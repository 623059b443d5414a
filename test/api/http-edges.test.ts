/**
 * The API's answers at the edges of HTTP, over a real HTTPS listener: requests Node's parser refuses,
 * router errors, 401 challenges, and a port that is already taken.
 */
import { createServer, type Server } from "node:net";
import { connect } from "node:tls";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApi } from "../../src/api/index.js";
import { runCli } from "../helpers/cli.js";
import { createTestApp, type TestApp } from "../helpers/app.js";

/** One raw HTTP/1.1 exchange over TLS: the status line, headers and body exactly as sent. */
function rawRequest(port: number, ca: string, request: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => socket.end(request));
    let text = "";
    socket.on("data", (d) => (text += d));
    socket.on("error", reject);
    socket.on("close", () => {
      const [head = "", body = ""] = text.split("\r\n\r\n");
      const [statusLine = "", ...lines] = head.split("\r\n");
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      resolve({ status: Number(statusLine.split(" ")[1]), headers, body });
    });
  });
}

describe("API edges over HTTPS", () => {
  let t: TestApp;
  let api: FastifyInstance;
  let port: number;
  let ca: string;

  beforeAll(async () => {
    t = await createTestApp("sqlite");
    const tls = await t.app.ca.serverTls();
    ca = tls.ca;
    api = await buildApi(t.app, { https: { key: tls.key, cert: tls.cert, ca: tls.ca }, bodyLimitBytes: 65_536, authFailureLimit: 1000, authFailureWindowSeconds: 60 });
    await api.listen({ host: "127.0.0.1", port: 0 });
    port = (api.server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await api?.close();
    await t?.cleanup();
  });

  it("answers over-large headers with 431 problem+json carrying the security headers", async () => {
    const response = await rawRequest(port, ca, `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
    expect(response.status).toBe(431);
    expect(response.headers["content-type"]).toBe("application/problem+json");
    expect(response.headers["strict-transport-security"]).toBe("max-age=31536000");
    expect(response.headers["x-content-type-options"]).toBe("nosniff");
    expect(response.headers["content-security-policy"]).toContain("default-src 'none'");
    expect(JSON.parse(response.body)).toMatchObject({ status: 431, code: "REQUEST_HEADERS_TOO_LARGE" });
  });

  it("answers a request the parser refuses with 400 problem+json", async () => {
    const response = await rawRequest(port, ca, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nBad Header Name: x\r\n\r\n");
    expect(response.status).toBe(400);
    expect(response.headers["content-type"]).toBe("application/problem+json");
    expect(response.headers["strict-transport-security"]).toBeDefined();
    expect(JSON.parse(response.body)).toMatchObject({ code: "REQUEST_MALFORMED" });
  });

  it("answers router errors (bad URL encoding, over-long path parameter) as problem+json with the headers", async () => {
    for (const url of ["/v1/devices/%E0%A4%A", `/v1/devices/${"a".repeat(200)}`]) {
      const response = await rawRequest(port, ca, `GET ${url} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${t.adminToken}\r\nConnection: close\r\n\r\n`);
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
      expect(response.headers["content-type"]).toContain("application/problem+json");
      expect(response.headers["x-frame-options"]).toBe("DENY");
    }
  });

  it("names the Bearer scheme in every 401 (RFC 6750 §3)", async () => {
    const missing = await api.inject({ url: "/v1/devices" });
    expect(missing.statusCode).toBe(401);
    expect(missing.headers["www-authenticate"]).toBe('Bearer realm="moat"');
    const invalid = await api.inject({ url: "/v1/devices", headers: { authorization: "Bearer moat_nope_nope" } });
    expect(invalid.statusCode).toBe(401);
    expect(invalid.headers["www-authenticate"]).toBe('Bearer realm="moat", error="invalid_token"');
    const est = await api.inject({ method: "POST", url: "/.well-known/est/simpleenroll", headers: { "content-type": "application/pkcs10", authorization: "Bearer not-a-token" }, payload: "MIIB" });
    expect(est.statusCode).toBe(401);
    expect(est.headers["www-authenticate"]).toMatch(/^Bearer realm="moat-est"/);
  });

  it("a port clash is a coded error naming the setting, not an EADDRINUSE stack", async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const taken = (blocker.address() as { port: number }).port;
    try {
      for (const [flag, setting] of [
        ["--api-port", "apiPort"],
        ["--pki-port", "pkiPort"],
        ["--mqtt-port", "broker.mqttPort"],
      ] as const) {
        const ports: Record<string, string> = { "--api-port": "0", "--pki-port": "0", "--mqtt-port": "0", [flag]: String(taken) };
        const result = await runCli(["serve", ...t.cliArgs, ...Object.entries(ports).flat()]);
        expect(result.code).toBe(1);
        expect(result.stderr).toMatch(new RegExp(`^error LISTEN_FAILED: cannot listen on 127\\.0\\.0\\.1:${taken} .*already in use.*${flag} \\(setting ${setting.replace(".", "\\.")}`, "m"));
        expect(result.stderr).not.toMatch(/\n\s+at /);
      }
    } finally {
      blocker.close();
    }
  });
});
