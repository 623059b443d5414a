/**
 * GET /v1/events/stream over real HTTPS with Node's HTTP client: role filtering, type and device
 * filters, heartbeats, a revoked token ending the stream, a slow client dropped without holding up
 * the others, and the per-process stream cap.
 */
import https from "node:https";
import type { IncomingMessage } from "node:http";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildApi } from "../../src/api/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";

interface Stream {
  response: IncomingMessage;
  /** Raw text received so far. */
  text(): string;
  /** Parsed `data:` events received so far. */
  events(): Array<{ type: string; subject: string; data: Record<string, unknown> }>;
  /** Resolves once the text matches. */
  until(test: (text: string) => boolean): Promise<void>;
  ended: Promise<void>;
  close(): void;
}

describe("GET /v1/events/stream", () => {
  let t: TestApp;
  let api: FastifyInstance;
  let base: string;
  let ca: string;
  const tokens: Record<string, string> = {};

  function open(path: string, token?: string): Promise<Stream> {
    return new Promise((resolve, reject) => {
      const request = https.get(`${base}${path}`, { ca, servername: "localhost", headers: token ? { authorization: `Bearer ${token}` } : {} }, (response) => {
        // The raw text is kept up to 1 MiB (enough for the assertions on it); events are parsed as blocks complete.
        let text = "";
        let pending = "";
        const events: ReturnType<Stream["events"]> = [];
        const waiters: Array<{ test: (text: string) => boolean; resolve: () => void }> = [];
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          if (text.length < 1024 * 1024) text += chunk;
          pending += chunk;
          const blocks = pending.split("\n\n");
          pending = blocks.pop()!;
          for (const block of blocks)
            for (const line of block.split("\n")) if (line.startsWith("data: ")) {
              const event = JSON.parse(line.slice(6)) as ReturnType<Stream["events"]>[number];
              if (typeof event.type === "string") events.push(event);
            }
          for (const w of [...waiters])
            if (w.test(text)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve();
            }
        });
        const ended = new Promise<void>((done) => response.once("close", () => done()));
        resolve({
          response,
          text: () => text,
          events: () => events,
          until: (test) => (test(text) ? Promise.resolve() : new Promise<void>((done) => waiters.push({ test, resolve: done }))),
          ended,
          close: () => request.destroy(),
        });
      });
      request.on("error", reject);
    });
  }

  async function body(stream: Stream): Promise<{ code?: string }> {
    await stream.ended;
    return JSON.parse(stream.text()) as { code?: string };
  }

  beforeAll(async () => {
    t = await createTestApp("sqlite");
    const tls = await t.app.ca.serverTls();
    ca = await t.app.ca.chainPem();
    api = await buildApi(t.app, {
      https: { key: tls.key, cert: tls.cert, ca: tls.ca },
      bodyLimitBytes: 65_536,
      authFailureLimit: 1000,
      authFailureWindowSeconds: 60,
      eventStream: { heartbeatMs: 200, maxBufferedBytes: 64 * 1024, maxClients: 6 },
    });
    await api.listen({ host: "127.0.0.1", port: 0 });
    base = `https://127.0.0.1:${(api.server.address() as { port: number }).port}`;
    await t.app.policy.createRole("device-watcher", [{ action: "events:read", resource: "*" }, { action: "devices:read", resource: "*" }], "test");
    await t.app.policy.createRole("no-events", [{ action: "devices:read", resource: "*" }], "test");
    for (const [name, role] of [["auditor", "auditor"], ["watcher", "device-watcher"], ["blind", "no-events"], ["doomed", "auditor"], ["slow", "auditor"]] as const)
      tokens[name] = (await t.app.tokens.create({ name, role }, "test")).token;
  });
  afterAll(async () => {
    await api?.close();
    await t?.cleanup();
  });

  it("refuses a missing token (401) and a token without events:read (403), with problem+json", async () => {
    const anonymous = await open("/v1/events/stream");
    expect(anonymous.response.statusCode).toBe(401);
    expect((await body(anonymous)).code).toBe("AUTH_TOKEN_MISSING");
    const blind = await open("/v1/events/stream", tokens.blind);
    expect(blind.response.statusCode).toBe(403);
    expect((await body(blind)).code).toBe("AUTH_FORBIDDEN");
    const bad = await open("/v1/events/stream?type=DROP%20TABLE", tokens.auditor);
    expect(bad.response.statusCode).toBe(400);
    expect((await body(bad)).code).toBe("VALIDATION_FAILED");
  });

  it("streams events with the security headers, filtered by type, device and the role's read permissions", async () => {
    const all = await open("/v1/events/stream", tokens.auditor);
    const devices = await open("/v1/events/stream", tokens.watcher);
    const onlyCam = await open("/v1/events/stream?type=device.*,cert.revoked&device=cam-1", tokens.auditor);
    expect(all.response.statusCode).toBe(200);
    expect(all.response.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
    expect(all.response.headers["cache-control"]).toBe("no-store");
    expect(all.response.headers["content-security-policy"]).toContain("default-src 'none'");
    await Promise.all([all, devices, onlyCam].map((s) => s.until((text) => text.includes(": connected"))));

    // Real changes through the API: registering devices, then an unauthenticated request (auth.failed).
    for (const id of ["cam-1", "cam-2"]) {
      const created = await fetchJson("POST", "/v1/devices", t.adminToken, { id });
      expect(created).toBe(201);
    }
    await open("/v1/devices", "moat_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").then((s) => s.ended);
    await all.until((text) => text.includes('"auth.failed"') && text.includes('"cam-2"'));
    await devices.until((text) => text.includes('"cam-2"'));
    // The last event the auditor saw has reached every stream that wanted it; anything filtered is absent.
    const types = (s: Stream) => s.events().map((e) => `${e.type} ${e.subject}`);
    expect(types(all)).toEqual(expect.arrayContaining(["device.created cam-1", "device.created cam-2"]));
    expect(types(all).some((e) => e.startsWith("auth.failed"))).toBe(true);
    expect(types(devices)).toEqual(["device.created cam-1", "device.created cam-2"]);
    await onlyCam.until((text) => text.includes(": heartbeat"));
    expect(types(onlyCam)).toEqual(["device.created cam-1"]);
    expect(all.text()).toMatch(/^retry: 3000\n/);
    expect(all.text()).toMatch(/\nid: 1\ndata: \{/);
    for (const s of [all, devices, onlyCam]) s.close();
  });

  it("sends heartbeats and ends the stream at once when the token is revoked", async () => {
    const stream = await open("/v1/events/stream", tokens.doomed);
    await stream.until((text) => text.includes(": heartbeat"));
    await t.app.tokens.revoke("doomed", "test");
    await stream.ended;
    expect(stream.text()).toContain('event: end\ndata: {"reason":"token revoked"}');
    const again = await open("/v1/events/stream", tokens.doomed);
    expect(again.response.statusCode).toBe(401);
    again.close();
  });

  it("drops a client that stops reading, and keeps serving the others", async () => {
    const slow = await open("/v1/events/stream?type=scan.*", tokens.slow);
    const fast = await open("/v1/events/stream?type=scan.*", tokens.auditor);
    await Promise.all([slow, fast].map((s) => s.until((text) => text.includes(": connected"))));
    slow.response.pause();
    // 64 MiB go out one event at a time, each once the reading client has it: far past what the loopback
    // socket buffers of the paused client hold (a few MiB), so its 64 KiB bound fills and it is dropped.
    const filler = "x".repeat(32 * 1024);
    const sent = 2048;
    for (let i = 0; i < sent; i++) {
      t.app.audit.notify({ type: "scan.finding", subject: `probe-${i}`, data: { filler } });
      await new Promise<void>((done) => {
        const check = () => (fast.events().length > i ? done() : setImmediate(check));
        check();
      });
    }
    t.app.audit.notify({ type: "scan.finding", subject: "last", data: {} });
    await fast.until(() => fast.events().at(-1)?.subject === "last");
    expect(fast.events().length).toBe(sent + 1);
    // The paused client, reading again, gets what was buffered for it and then the end of a cut stream.
    const closed = new Promise<void>((done) => slow.response.socket.once("close", () => done()));
    slow.response.resume();
    await closed;
    expect(slow.response.complete).toBe(false);
    expect(slow.events().length).toBeLessThan(sent);
    fast.close();
  });

  it("refuses streams past the per-process cap with EVENT_STREAM_BUSY", async () => {
    const open6 = await Promise.all(Array.from({ length: 6 }, () => open("/v1/events/stream", tokens.auditor)));
    await Promise.all(open6.map((s) => s.until((text) => text.includes(": connected"))));
    const seventh = await open("/v1/events/stream", tokens.auditor);
    expect(seventh.response.statusCode).toBe(503);
    expect((await body(seventh)).code).toBe("EVENT_STREAM_BUSY");
    for (const s of open6) s.close();
  });

  async function fetchJson(method: string, path: string, token: string, payload: unknown): Promise<number> {
    return new Promise((resolve, reject) => {
      const data = JSON.stringify(payload);
      const request = https.request(`${base}${path}`, { method, ca, servername: "localhost", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" } }, (response) => {
        response.resume();
        response.on("end", () => resolve(response.statusCode!));
      });
      request.on("error", reject);
      request.end(data);
    });
  }
});
