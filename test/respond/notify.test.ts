/**
 * Notifications to real receivers on loopback: a webhook whose Standard Webhooks signature the
 * receiver checks with its own HMAC, retries then a dead letter on a failing receiver, redelivery, and
 * syslog (RFC 5424, octet counting) over a real TLS socket.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer as createHttpServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { isMoatError } from "../../src/errors.js";
import { Notifier } from "../../src/respond/index.js";
import { respondStore } from "../../src/store/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";

let t: TestApp;
const servers: { close(cb?: () => void): unknown }[] = [];

beforeEach(async () => {
  t = await createTestApp("sqlite");
});
afterEach(async () => {
  for (const server of servers.splice(0)) await new Promise<void>((resolve) => server.close(() => resolve()));
  await t.cleanup();
});

interface Received {
  headers: IncomingMessage["headers"];
  body: string;
}

function listen(server: Server): Promise<number> {
  servers.push(server);
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

/** Collects each request and answers with `status()`. */
function receiver(received: Received[], status: () => number) {
  return (req: IncomingMessage, res: import("node:http").ServerResponse) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.writeHead(status()).end();
    });
  };
}

/** The receiver's own check (not Moat's verifier): HMAC-SHA256 over "id.timestamp.body" with the base64-decoded whsec_ key. */
function receiverVerifies(secret: string, r: Received): boolean {
  const key = Buffer.from(secret.slice("whsec_".length), "base64");
  const mac = createHmac("sha256", key).update(`${r.headers["webhook-id"]}.${r.headers["webhook-timestamp"]}.${r.body}`).digest();
  const given = String(r.headers["webhook-signature"]).split(" ");
  return given.some((g) => g.startsWith("v1,") && Buffer.from(g.slice(3), "base64").length === mac.length && timingSafeEqual(Buffer.from(g.slice(3), "base64"), mac));
}

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("webhooks (Standard Webhooks)", () => {
  it("delivers a signed alert over HTTPS that the receiver verifies; the secret is stored only sealed", async () => {
    const tls = await t.app.ca.serverTls();
    const received: Received[] = [];
    const server = createHttpsServer({ key: tls.key, cert: tls.cert }, receiver(received, () => 204));
    const port = await listen(server as unknown as Server);
    const { secret, target } = await t.app.respond.notifier.addWebhook({ name: "soc", url: `https://127.0.0.1:${port}/hooks/moat`, caPem: tls.ca }, "test");
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(JSON.stringify(target)).not.toContain(secret);
    const row = await t.app.store.db.selectFrom("notify_targets").selectAll().where("name", "=", "soc").executeTakeFirstOrThrow();
    expect(Buffer.from(row.sealed_secret!).includes(Buffer.from(secret.slice(6)))).toBe(false);
    expect(row.config).not.toContain(secret.slice(6));

    const [id] = await t.app.respond.notifier.enqueue({ type: "alert.raised", severity: "high", data: { alertId: "al-1", rule: "topic-probing", subject: { kind: "device", id: "d1" }, severity: "high", count: 1 } }, null);
    await until(() => received.length === 1, "the webhook");
    const [delivery] = received;
    expect(delivery!.headers["webhook-id"]).toBe(id);
    expect(delivery!.headers["content-type"]).toBe("application/json");
    expect(Math.abs(Number(delivery!.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(300);
    expect(receiverVerifies(secret, delivery!)).toBe(true);
    // A body changed on the way no longer verifies.
    expect(receiverVerifies(secret, { ...delivery!, body: delivery!.body.replace("d1", "d2") })).toBe(false);
    expect(JSON.parse(delivery!.body)).toMatchObject({ type: "alert.raised", data: { alertId: "al-1", subject: { id: "d1" } } });
    await until(async () => (await t.app.respond.notifier.deliveries()).some((d) => d.status === "delivered"), "the delivered row");
  });

  it("retries a failing receiver with backoff, then keeps a dead letter that redeliver sends again", async () => {
    const received: Received[] = [];
    let answer = 500;
    const port = await listen(createHttpServer(receiver(received, () => answer)));
    const notifier = new Notifier(respondStore(t.app.store), t.app.envelope, { retryBaseMs: 30, maxAttempts: 3 });
    const { secret } = await notifier.addWebhook({ name: "flaky", url: `http://127.0.0.1:${port}/hook` }, "test");
    const [id] = await notifier.enqueue({ type: "alert.raised", severity: "medium", data: { alertId: "al-2" } }, null);
    const stop = notifier.start(20);
    try {
      await until(async () => (await notifier.deadLetters()).length === 1, "the dead letter");
    } finally {
      stop();
    }
    expect(received).toHaveLength(3);
    expect(new Set(received.map((r) => r.headers["webhook-id"]))).toEqual(new Set([id]));
    expect(received.every((r) => receiverVerifies(secret, r))).toBe(true);
    const [dead] = await notifier.deadLetters();
    expect(dead).toMatchObject({ id, status: "dead", attempts: 3, lastError: "webhook answered HTTP 500" });
    const [event] = await t.app.audit.list({ type: "notify.dead_letter" });
    expect(event).toMatchObject({ subject: "flaky", data: { deliveryId: id, attempts: 3 } });
    // The insecure loopback target is flagged when it is added.
    expect((await t.app.audit.list({ type: "notify.target_added" }))[0]).toMatchObject({ severity: "high", data: { insecure: true } });

    answer = 200;
    const again = await notifier.redeliver(id!, "operator:alice");
    expect(again).toMatchObject({ status: "delivered", attempts: 1, lastError: null });
    expect(received).toHaveLength(4);
    expect(received[3]!.body).toBe(received[0]!.body);
    expect(receiverVerifies(secret, received[3]!)).toBe(true);
    await expect(notifier.redeliver(id!, "operator:alice")).rejects.toSatisfy((e) => isMoatError(e, "NOTIFY_DELIVERY_NOT_DEAD"));
  });

  it.each([
    ["http://example.org/hook", /https/],
    ["https://user:pw@127.0.0.1/hook", /credentials/],
    ["not a url", /not a URL/],
  ])("refuses the URL %s", async (url, message) => {
    const error = await t.app.respond.notifier.addWebhook({ name: "bad", url }, "test").catch((e: unknown) => e);
    expect(isMoatError(error, "NOTIFY_TARGET_INVALID")).toBe(true);
    expect((error as Error).message).toMatch(message);
    expect(await t.app.respond.notifier.listTargets()).toEqual([]);
  });

  it("refuses a secret file that is not whsec_ base64", async () => {
    await expect(t.app.respond.notifier.addWebhook({ name: "s", url: "https://127.0.0.1/h", secret: "hunter2" }, "test")).rejects.toSatisfy((e) => isMoatError(e, "NOTIFY_SECRET_INVALID"));
  });
});

describe("syslog (RFC 5424 over TLS, RFC 5425 / RFC 6587 octet counting)", () => {
  it("a TLS receiver gets one framed RFC 5424 message per alert, with structured data and the JSON body", async () => {
    const tls = await t.app.ca.serverTls();
    const frames: string[] = [];
    let buffer = Buffer.alloc(0);
    const server = createTlsServer({ key: tls.key, cert: tls.cert }, (socket: TLSSocket) => {
      socket.on("data", (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        // Octet counting: MSG-LEN SP SYSLOG-MSG, the length in octets.
        for (;;) {
          const space = buffer.indexOf(0x20);
          if (space < 0) break;
          const length = Number(buffer.subarray(0, space).toString());
          if (buffer.length < space + 1 + length) break;
          frames.push(buffer.subarray(space + 1, space + 1 + length).toString("utf8"));
          buffer = buffer.subarray(space + 1 + length);
        }
      });
    });
    const port = await listen(server as unknown as Server);
    await t.app.respond.notifier.addSyslog({ name: "siem", host: "127.0.0.1", port, transport: "tls", caPem: tls.ca }, "test");
    await t.app.respond.notifier.enqueue({ type: "alert.raised", severity: "high", data: { alertId: "al-9", rule: "credential-stuffing", subject: { kind: "address-range", id: "203.0.113.0/24" }, severity: "high", count: 3 } }, null);
    await until(() => frames.length === 1, "the syslog message");
    const message = frames[0]!;
    // PRI = facility 10 (authpriv) * 8 + severity 3 (error, for "high") = 83; VERSION 1.
    const match = /^<(\d+)>1 (\S+) (\S+) moat (\d+) alert\.raised \[moat@32473 ([^\]]*)\] \uFEFF(.*)$/s.exec(message);
    expect(match).not.toBeNull();
    expect(match![1]).toBe("83");
    expect(Number.isNaN(Date.parse(match![2]!))).toBe(false);
    expect(match![5]).toContain('alertId="al-9"');
    expect(match![5]).toContain('subject="address-range:203.0.113.0/24"');
    expect(JSON.parse(match![6]!)).toMatchObject({ type: "alert.raised", data: { alertId: "al-9", count: 3 } });
    await until(async () => (await t.app.respond.notifier.deliveries()).some((d) => d.status === "delivered"), "the delivered row");
  });

  it("a TLS receiver whose certificate the target does not trust gets nothing", async () => {
    const tls = await t.app.ca.serverTls();
    let bytes = 0;
    const server = createTlsServer({ key: tls.key, cert: tls.cert }, (socket) => socket.on("data", (chunk: Buffer) => (bytes += chunk.length)));
    const port = await listen(server as unknown as Server);
    const notifier = new Notifier(respondStore(t.app.store), t.app.envelope, { retryBaseMs: 10_000, maxAttempts: 2 });
    await notifier.addSyslog({ name: "siem", host: "127.0.0.1", port, transport: "tls" }, "test");
    const [id] = await notifier.enqueue({ type: "alert.raised", severity: "high", data: {} }, null);
    await until(async () => (await notifier.deliveries())[0]?.attempts === 1, "the first attempt");
    const [row] = await notifier.deliveries();
    expect(row).toMatchObject({ id, status: "pending", attempts: 1 });
    expect(row!.lastError).toMatch(/certificate/i);
    expect(bytes).toBe(0);
  });

  it("refuses plain TCP to a non-loopback host", async () => {
    await expect(t.app.respond.notifier.addSyslog({ name: "far", host: "192.0.2.10", port: 514, transport: "tcp" }, "test")).rejects.toSatisfy((e) => isMoatError(e, "NOTIFY_TARGET_INVALID"));
  });
});
