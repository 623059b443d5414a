/**
 * The dashboard in a real browser (Debian chromium driven by playwright-core) against a real `moat serve`
 * (HTTPS API, embedded MQTT broker, live-session record) with a real MQTT.js device: login, role-based
 * actions (and the API refusing them anyway), fleet → device → certificate, revoking a connected device's
 * certificate and watching its session end live, CSRF from another origin, no request to another origin,
 * the CSP on every page; screenshots of each view go to docs/dashboard/.
 */
import { createPrivateKey } from "node:crypto";
import { mkdirSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import https from "node:https";
import { type AddressInfo } from "node:net";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, startServers, type RunningServers } from "../../src/serve.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { launchChromium, requireChromium } from "../helpers/browser.js";
import { freePort } from "../../src/lib/free-port.js";

const SHOTS = join(import.meta.dirname, "..", "..", "docs", "dashboard");


const hasChromium = requireChromium();

describe.skipIf(!hasChromium)("the dashboard in a real browser", () => {
  let t: TestApp;
  let servers: RunningServers;
  let browser: { context: BrowserContext; close(): Promise<void> };
  let base: string;
  let mqttPort: number;
  let device: MqttClient;
  let serial: string;
  let attacker: Server;
  const tokens: Record<string, string> = {};
  const requests: string[] = [];
  /** Every dashboard response (documents, modules, styles) with its CSP header. */
  const uiResponses: { url: string; csp: string | undefined }[] = [];

  beforeAll(async () => {
    mqttPort = await freePort();
    t = await createTestApp("sqlite", { "broker.mqttPort": mqttPort, apiPort: 0, pkiPort: await freePort() });
    servers = await startServers(t.app, createLogger({ ...t.app.config, logLevel: "silent" }));
    base = servers.apiUrl;
    tokens.operator = (await t.app.tokens.create({ name: "ops", role: "operator" }, "test")).token;
    tokens.auditor = (await t.app.tokens.create({ name: "audit", role: "auditor" }, "test")).token;
    await t.app.devices.create({ id: "cam-1", name: "Lobby camera", group: "lobby", attributes: { floor: "1" } }, "test");
    for (const id of ["cam-2", "sensor-1", "sensor-2"]) await t.app.devices.create({ id, group: id.startsWith("cam") ? "lobby" : "hvac" }, "test");
    await t.app.devices.setStatus("sensor-2", "active", "test");
    await t.app.firmwareInventory.report("cam-1", { version: "2.4.1", securityVersion: 7 }, "sdk");
    await t.app.firmwareInventory.report("sensor-1", { version: "2.3.0", securityVersion: 6 }, "ota");
    const issued = await t.app.pki.certificates.issueWithGeneratedKey({ deviceId: "cam-1", actor: "test" });
    serial = issued.serialHex;
    const key = createPrivateKey({ key: issued.privateKeyPkcs8Der, format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }).toString();
    device = await mqtt.connectAsync(`mqtts://localhost:${mqttPort}`, { ca: await t.app.ca.chainPem(), cert: issued.certificatePem, key, clientId: "cam-1", protocolVersion: 4, reconnectPeriod: 0 });
    for (let i = 0; i < 200 && (await t.app.sessions.count()) === 0; i++) await new Promise((r) => setTimeout(r, 25));
    // A device probing a topic it may not use, so the security view has a denial to show.
    await device.subscribeAsync("devices/other/secrets").catch(() => undefined);
    // The attacker's page, on another origin (plain HTTP on another port and host name).
    attacker = createHttpServer((_request, response) => {
      response.setHeader("content-type", "text/html");
      response.end(`<!doctype html><form id="f" method="POST" action="${base}/v1/devices/cam-2/status" enctype="text/plain"><input name='{"status":"decommissioned","x":"' value='"}'></form><script>document.getElementById("f").submit()</script>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, "127.0.0.1", () => resolve()));
    mkdirSync(SHOTS, { recursive: true });
    browser = await launchChromium();
    browser.context.on("request", (request) => requests.push(request.url()));
    browser.context.on("response", (response) => {
      if (new URL(response.url()).pathname.startsWith("/ui")) uiResponses.push({ url: response.url(), csp: response.headers()["content-security-policy"] });
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    device?.end(true);
    await new Promise<void>((resolve) => (attacker ? attacker.close(() => resolve()) : resolve()));
    await servers?.close();
    await t?.cleanup();
  });

  /** Signs in afresh (the browser profile keeps cookies across pages, so an earlier session is dropped first). */
  async function logIn(page: Page, token: string): Promise<void> {
    await browser.context.clearCookies();
    await page.goto(`${base}/ui/`);
    await page.getByLabel("API token").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Fleet", level: 1 }).waitFor();
  }

  async function shoot(page: Page, name: string): Promise<void> {
    // The live event stream keeps a connection open, so the network never idles: give charts a moment.
    await page.waitForTimeout(400);
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  }

  it("logs in with an API token into an HttpOnly, Secure, SameSite=Strict session and shows the fleet", async () => {
    const page = await browser.context.newPage();
    await page.goto(`${base}/ui/`);
    await page.getByLabel("API token").waitFor();
    await shoot(page, "login");
    await page.getByLabel("API token").fill("moat_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("That API token is not valid").waitFor();
    await logIn(page, tokens.operator!);
    const [cookie] = await browser.context.cookies(base);
    expect(cookie).toMatchObject({ name: "moat_session", httpOnly: true, secure: true, sameSite: "Strict" });
    // The session id is not the token, and the page's script cannot read the cookie.
    expect(cookie!.value).not.toContain(tokens.operator!.slice(5, 21));
    expect(await page.evaluate(() => document.cookie)).toBe("");
    await expect.poll(() => page.locator("#connected-count").textContent()).toBe("1");
    await expect.poll(() => page.getByText("On the latest security version").count()).toBe(1);
    await shoot(page, "fleet");
    await page.close();
  });

  it("navigates fleet → devices → device → certificate with links", async () => {
    const page = await browser.context.newPage();
    await logIn(page, tokens.operator!);
    await page.getByRole("navigation", { name: "Views" }).getByRole("link", { name: "Devices" }).click();
    await page.getByRole("heading", { name: "Devices", level: 1 }).waitFor();
    await page.getByLabel("Search id or name").fill("cam");
    await page.getByRole("button", { name: "Search" }).click();
    await expect.poll(() => page.locator("tbody tr").count()).toBe(2);
    await shoot(page, "devices");
    await page.getByRole("link", { name: "cam-1" }).click();
    await page.getByRole("heading", { name: "Device cam-1" }).waitFor();
    await expect.poll(() => page.locator("#device-connected").textContent()).toBe("yes");
    await shoot(page, "device");
    await page.getByRole("link", { name: serial }).first().click();
    await page.getByRole("heading", { name: `Certificate ${serial}` }).waitFor();
    expect(await page.locator(".facts").textContent()).toContain("cam-1");
    await shoot(page, "certificate");
    await page.close();
  });

  it("shows an auditor no action buttons, and the API refuses the action anyway", async () => {
    const page = await browser.context.newPage();
    await logIn(page, tokens.auditor!);
    await page.goto(`${base}/ui/#/devices/cam-1`);
    await page.getByRole("heading", { name: "Device cam-1" }).waitFor();
    await page.getByRole("heading", { name: "Certificates" }).waitFor();
    for (const name of ["Suspend", "Quarantine", "Reactivate", "Revoke certificate", "Create enrollment token"]) expect(await page.getByRole("button", { name }).count(), name).toBe(0);
    // The same request the operator's button sends, from the auditor's page with a valid CSRF token.
    const answer = await page.evaluate(async () => {
      const session = (await (await fetch("/ui/session")).json()) as { csrf: string };
      const response = await fetch("/v1/devices/cam-1/status", { method: "POST", headers: { "content-type": "application/json", "x-csrf-token": session.csrf }, body: JSON.stringify({ status: "suspended" }) });
      return { status: response.status, code: ((await response.json()) as { code: string }).code };
    });
    expect(answer).toEqual({ status: 403, code: "AUTH_FORBIDDEN" });
    expect((await t.app.devices.get("cam-1")).status).toBe("active");
    await page.close();
  });

  it("revokes a connected device's certificate from its page: the MQTT session ends and the device leaves connected live", async () => {
    const page = await browser.context.newPage();
    await logIn(page, tokens.operator!);
    await page.goto(`${base}/ui/#/devices/cam-1`);
    await page.getByRole("heading", { name: "Device cam-1" }).waitFor();
    await expect.poll(() => page.locator("#device-connected").textContent()).toBe("yes");
    await expect.poll(() => page.locator("#live").textContent()).toBe("live");
    const closed = new Promise<void>((resolve) => device.once("close", () => resolve()));
    await page.getByRole("button", { name: "Revoke certificate" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    expect(await dialog.getByLabel("Reason").inputValue()).toBe("unspecified");
    await shoot(page, "revoke-dialog");
    await dialog.getByRole("button", { name: "Revoke", exact: true }).click();
    await closed;
    // No reload: the live stream moves the device out of "connected".
    await expect.poll(() => page.locator("#device-connected").textContent(), { timeout: 15_000 }).toBe("no");
    await expect.poll(async () => (await t.app.pki.certificates.get(serial)).status).toBe("revoked");
    expect((await t.app.pki.certificates.get(serial)).revocationReason).toBe("unspecified");
    await page.goto(`${base}/ui/#/fleet`);
    await expect.poll(() => page.locator("#connected-count").textContent()).toBe("0");
    await page.close();
  });

  it("refuses a state-changing request from another origin (browser form, and a stolen cookie without the CSRF proof)", async () => {
    const page = await browser.context.newPage();
    await logIn(page, tokens.operator!);
    const answers: number[] = [];
    page.on("response", (response) => {
      if (response.url().includes("/v1/devices/cam-2/status")) answers.push(response.status());
    });
    const attackerUrl = `http://localhost:${(attacker.address() as AddressInfo).port}/`;
    await page.goto(attackerUrl);
    await expect.poll(() => answers.length).toBe(1);
    expect(answers[0]).toBeGreaterThanOrEqual(400);
    expect((await t.app.devices.get("cam-2")).status).toBe("pending");
    // Even with the session cookie in hand, a request without the same-origin proof changes nothing.
    const [cookie] = await browser.context.cookies(base);
    const ca = await t.app.ca.chainPem();
    const post = (headers: Record<string, string>) =>
      new Promise<{ status: number; code: string }>((resolve, reject) => {
        const request = https.request(`${base}/v1/devices/cam-2/status`, { method: "POST", ca, servername: "localhost", headers: { cookie: `moat_session=${cookie!.value}`, "content-type": "application/json", ...headers } }, (response) => {
          let body = "";
          response.on("data", (chunk) => (body += chunk));
          response.on("end", () => resolve({ status: response.statusCode!, code: (JSON.parse(body) as { code: string }).code }));
        });
        request.on("error", reject);
        request.end(JSON.stringify({ status: "decommissioned" }));
      });
    const csrf = await page.evaluate(async () => ((await (await fetch(`/ui/session`)).json()) as { csrf: string }).csrf).catch(() => "");
    expect(await post({ origin: "https://evil.example" })).toEqual({ status: 403, code: "AUTH_CSRF_REFUSED" });
    expect(await post({ origin: base })).toEqual({ status: 403, code: "AUTH_CSRF_REFUSED" });
    expect(await post({ origin: base, "x-csrf-token": "guessed" })).toEqual({ status: 403, code: "AUTH_CSRF_REFUSED" });
    expect(csrf).toBe(""); // the attacker's page could not read the session (no CORS, other origin)
    expect((await t.app.devices.get("cam-2")).status).toBe("pending");
    const denied = await t.app.audit.list({ type: "acl.denied", subject: "csrf", limit: 100 });
    expect(denied.length).toBeGreaterThanOrEqual(3);
    await page.close();
  });

  it("renders every view with the CSP header, and screenshots each", async () => {
    const page = await browser.context.newPage();
    await logIn(page, tokens.operator!);
    for (const [view, heading] of [
      ["security", "Security"],
      ["certificates", "Certificates and CAs"],
      ["audit", "Audit"],
      ["scans", "Scans"],
      ["ota", "OTA"],
      ["compliance", "Compliance"],
    ] as const) {
      const response = await page.goto(`${base}/ui/${view}`);
      expect(response!.headers()["content-security-policy"]).toContain("default-src 'self'");
      await page.goto(`${base}/ui/#/${view}`);
      await page.getByRole("heading", { name: heading, level: 1 }).waitFor();
      expect(await page.locator(".notice-error").count(), `${view} shows no error`).toBe(0);
      if (view === "audit") await expect.poll(() => page.locator(".notice-ok").textContent()).toContain("verified");
      await shoot(page, view);
    }
    // Readable on a phone: the fleet view at 390 px wide without horizontal scrolling of the page.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/ui/#/fleet`);
    await page.getByRole("heading", { name: "Fleet", level: 1 }).waitFor();
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shoot(page, "fleet-phone");
    await page.close();
  });

  it("ends the session at once when its token is revoked, and on logout", async () => {
    const page = await browser.context.newPage();
    const temp = (await t.app.tokens.create({ name: "temp", role: "auditor" }, "test")).token;
    await logIn(page, temp);
    await t.app.tokens.revoke("temp", "test");
    await page.getByLabel("API token").waitFor({ timeout: 20_000 });
    expect(await page.evaluate(async () => (await fetch("/ui/session")).status)).toBe(401);
    await logIn(page, tokens.auditor!);
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByLabel("API token").waitFor();
    expect(await page.evaluate(async () => (await fetch("/v1/devices")).status)).toBe(401);
    await page.close();
  });

  it("sent every request to Moat itself and served every dashboard file with the strict CSP", () => {
    const origins = new Set(requests.filter((url) => !url.startsWith("data:")).map((url) => new URL(url).origin));
    const attackerOrigin = `http://localhost:${(attacker.address() as AddressInfo).port}`;
    expect([...origins].sort()).toEqual([base, attackerOrigin].sort());
    expect(uiResponses.length).toBeGreaterThan(10);
    for (const response of uiResponses.filter((r) => new URL(r.url).origin === base)) {
      expect(response.csp, response.url).toContain("default-src 'self'");
      expect(response.csp, response.url).not.toContain("unsafe-inline");
    }
  });
});
