/**
 * End to end against a real `moat serve` (the built CLI in its own process): a device with a real
 * certificate probes topics it may not use, detection raises a topic-probing alert, the playbook
 * quarantines the device (its live session is narrowed: its own commands topic is refused from then on),
 * a webhook receiver gets the alert signed per Standard Webhooks, `moat events tail -f` shows it live
 * from the API's event stream, and `moat incident` assembles the timeline from the audit log.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHmac, createPrivateKey, timingSafeEqual } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createServer as createHttpsServer, type Server } from "node:https";
import { type AddressInfo } from "node:net";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { REPO_ROOT, runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";
import { freePort } from "../../src/lib/free-port.js";


async function until<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function suback(client: MqttClient, topic: string): Promise<number> {
  try {
    return (await client.subscribeAsync(topic, { qos: 0 }))[0]!.qos;
  } catch (error) {
    const granted = (error as { packet?: { granted?: (number | { qos: number })[] } }).packet?.granted?.[0];
    return typeof granted === "object" ? granted.qos : (granted ?? -1);
  }
}

describe("a probing device against a real moat serve", () => {
  let t: TestApp;
  let serve: ChildProcess | undefined;
  let tail: ChildProcess | undefined;
  let receiver: Server;
  let device: MqttClient | undefined;
  const dir = tempDir();
  const hooks: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  let tailOut = "";
  let secret = "";
  let ports: { api: number; mqtt: number; pki: number };

  beforeAll(async () => {
    ports = { api: await freePort(), mqtt: await freePort(), pki: await freePort() };
    t = await createTestApp("sqlite");
    const tls = await t.app.ca.serverTls();
    receiver = createHttpsServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (chunk: string) => (body += chunk));
      req.on("end", () => {
        hooks.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", () => resolve()));
    ({ secret } = await t.app.respond.notifier.addWebhook({ name: "soc", url: `https://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, caPem: tls.ca, minSeverity: "medium" }, "test"));
    await t.app.respond.playbooks.apply("name: contain-probers\nrule: topic-probing\nactions: [quarantine]\nrateLimit: { max: 3, window: 10m }\n", "test");

    serve = spawn(process.execPath, [`${REPO_ROOT}dist/cli/bin.js`, "serve", ...t.cliArgs, "--api-port", String(ports.api), "--mqtt-port", String(ports.mqtt), "--pki-port", String(ports.pki)], {
      env: { ...process.env, MOAT_LOG_LEVEL: "warn" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let serveErr = "";
    serve.stderr!.on("data", (d) => (serveErr += d));
    await until(() => serveErr.includes("API on") || undefined, `moat serve to start: ${serveErr}`);

    const tokenFile = join(dir.path, "token");
    writeFileSync(tokenFile, t.adminToken, { mode: 0o600 });
    tail = spawn(process.execPath, [`${REPO_ROOT}dist/cli/bin.js`, "events", "tail", "-f", "-n", "0", "--type", "alert.raised,respond.*", "--json", "--token-file", tokenFile, "--url", `https://127.0.0.1:${ports.api}`, ...t.cliArgs], {
      env: { ...process.env, MOAT_LOG_LEVEL: "silent" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let tailErr = "";
    tail.stdout!.on("data", (d) => (tailOut += d));
    tail.stderr!.on("data", (d) => (tailErr += d));
    await until(() => tailErr.includes("following") || undefined, `events tail -f to connect: ${tailErr}`);
  }, 60_000);

  afterAll(async () => {
    await device?.endAsync(true);
    for (const child of [tail, serve]) {
      if (!child || child.exitCode !== null) continue;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    await new Promise<void>((resolve) => receiver?.close(() => resolve()));
    await t?.cleanup();
    dir.cleanup();
  });

  it("ends up quarantined with an alert, a signed webhook, a live event and an incident timeline", async () => {
    await t.app.devices.create({ id: "prober-1" }, "test");
    const issued = await t.app.pki.certificates.issueWithGeneratedKey({ deviceId: "prober-1", actor: "test" });
    const key = createPrivateKey({ key: issued.privateKeyPkcs8Der, format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }).toString();
    device = await mqtt.connectAsync(`mqtts://localhost:${ports.mqtt}`, { ca: await t.app.ca.chainPem(), cert: issued.certificatePem, key, clientId: "prober-1", protocolVersion: 4, reconnectPeriod: 0 });
    expect(await suback(device, "devices/prober-1/commands/#")).toBe(0);

    // The probe: distinct topic filters the device role does not allow.
    for (let i = 0; i < 8; i++) expect(await suback(device, `devices/victim-${i}/commands/#`)).toBe(128);

    // Quarantined by the playbook; the live session is narrowed, not closed.
    await until(async () => ((await t.app.devices.get("prober-1")).status === "quarantined" ? true : undefined), "the quarantine");
    await until(async () => ((await suback(device!, "devices/prober-1/commands/#")) === 128 ? true : undefined), "the narrowed session");
    expect(device.connected).toBe(true);

    const [raised] = await t.app.audit.list({ type: "alert.raised", subject: "prober-1" });
    expect(raised).toMatchObject({ data: { rule: "topic-probing", subject: { kind: "device", id: "prober-1" } } });
    const alertId = String(raised!.data.alertId);
    const [action] = await t.app.audit.list({ type: "respond.action", subject: "prober-1" });
    expect(action).toMatchObject({ actor: "playbook:contain-probers", data: { alertId, action: "quarantine", status: "done" } });

    // The webhook, verified the receiver's way (HMAC-SHA256 over id.timestamp.body with the whsec_ key).
    const hook = await until(() => hooks.find((h) => h.body.includes(alertId)), "the webhook");
    const mac = createHmac("sha256", Buffer.from(secret.slice(6), "base64")).update(`${String(hook.headers["webhook-id"])}.${String(hook.headers["webhook-timestamp"])}.${hook.body}`).digest();
    const sent = Buffer.from(String(hook.headers["webhook-signature"]).replace(/^v1,/, ""), "base64");
    expect(sent.length === mac.length && timingSafeEqual(sent, mac)).toBe(true);
    expect(JSON.parse(hook.body)).toMatchObject({ type: "alert.raised", data: { alertId, rule: "topic-probing" } });

    // Live from the API's event stream through `moat events tail -f`.
    const live = await until(() => {
      const lines = tailOut.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as { type: string; data: { alertId?: string } });
      return lines.some((l) => l.type === "alert.raised" && l.data.alertId === alertId) && lines.some((l) => l.type === "respond.action") ? lines : undefined;
    }, "the live events");
    expect(live.length).toBeGreaterThanOrEqual(2);

    // The incident, from the command line.
    const opened = await runCli(["incident", "open", "prober-1 probed topics", "--alert", alertId, "--json", ...t.cliArgs]);
    expect(opened.stderr).toBe("");
    const { id } = JSON.parse(opened.stdout) as { id: string };
    const shown = JSON.parse((await runCli(["incident", "show", id, "--json", ...t.cliArgs])).stdout) as { timeline: { seq: number; type: string; actor: string }[]; actions: { status: string }[] };
    const types = shown.timeline.map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(["alert.raised", "device.status_changed", "respond.action", "incident.opened", "acl.denied"]));
    expect(types.indexOf("alert.raised")).toBeLessThan(types.indexOf("respond.action"));
    expect(shown.actions).toMatchObject([{ status: "done" }]);
    expect(shown.timeline.every((e, i, all) => i === 0 || e.seq > all[i - 1]!.seq)).toBe(true);
  }, 90_000);
});
