/**
 * Mosquitto as Moat's data plane, end to end: `moat mosquitto setup`, `moat serve` with
 * broker.mode = mosquitto, real device certificates, mosquitto_pub/sub (MQTT 5 and 3.1.1) and MQTT.js
 * (MQTT 5), live revocation and suspension from the CLI, quarantine, drift, and a Mosquitto crash.
 */
import { spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DynsecAdmin, adminSecretName, mosquittoPaths, sealedSecrets } from "../../src/mosquitto/index.js";
import { MosquittoHarness, mosquittoAvailable, publishReason, run, subscribeGranted, waitUntil, type DeviceCert } from "./harness.js";

const ok = mosquittoAvailable();

describe.skipIf(!ok)("Mosquitto as the data plane", () => {
  const h = new MosquittoHarness();
  let d1: DeviceCert;
  let d2: DeviceCert;

  const events = async (type: string, subject?: string) => (await h.app.audit.list({ limit: 200 })).filter((e) => e.type === type && (subject === undefined || e.subject === subject));

  beforeAll(async () => {
    await h.init();
    d1 = await h.device("d1");
    d2 = await h.device("d2");
    await h.startServe();
  }, 60_000);

  afterAll(async () => {
    await h.close();
  });

  it("setup wrote a TLS-only configuration with the admin channel on a unix socket, and serve issued the listener key into run/ (0600)", () => {
    const paths = mosquittoPaths(h.dir);
    const conf = readFileSync(paths.conf, "utf8");
    expect(conf).toContain("require_certificate true");
    expect(conf).toContain("use_identity_as_username true");
    expect(conf).toContain("allow_anonymous false");
    expect(conf).toContain("tls_version tlsv1.2");
    expect(conf).toMatch(/^listener 0 .*admin\.sock$/m);
    // Exactly two listeners: the unix socket and the TLS port.
    expect(conf.match(/^listener /gm)).toHaveLength(2);
    expect(statSync(paths.keyFile).mode & 0o777).toBe(0o600);
    // The admin password is not in the directory in the clear.
    expect(readFileSync(paths.dynsec, "utf8")).not.toMatch(/"password":\s*"[A-Za-z0-9_-]{43}"/);
  });

  it("setup refuses a directory it did not create, and serve refuses another --mqtt-port", async () => {
    const foreign = join(h.tmp.path, "foreign");
    mkdirSync(foreign);
    writeFileSync(join(foreign, "keep.txt"), "mine");
    const refused = await h.cli(["mosquitto", "setup", "--dir", foreign, "--port", "1"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("MOSQUITTO_DIR_NOT_OURS");
    expect(existsSync(join(foreign, "mosquitto.conf"))).toBe(false);
    const mismatch = await h.cli(["serve", "--api-port", "0", "--pki-port", "0", "--mqtt-port", String(h.port === 1884 ? 1885 : 1884)], { MOAT_BROKER_MODE: "mosquitto" });
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toContain("MOSQUITTO_PORT_MISMATCH");
  });

  it.each([["mqttv5"], ["mqttv311"]])("mosquitto_sub receives what mosquitto_pub sends on a device's own topics (%s); another device's topic is refused", async (version) => {
    const sub = spawn("mosquitto_sub", [...h.tlsArgs(d1), "-V", version, "-t", "devices/d1/commands/#", "-C", "1", "-W", "10", "-v"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    sub.stdout.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => sub.on("close", resolve));
    // d2 holds the default role: it may not publish to d1's commands; a commander may.
    await h.app.policy.createRole("commander", [{ effect: "allow", action: "publish", resource: "devices/+/commands/#" }], "test").catch(() => undefined);
    const commander = await h.device(`cmd-${version}`, { role: "commander" });
    await waitUntil("d1's subscription", async () => (await events("device.connected", "d1")).length > 0 || undefined);
    await new Promise((r) => setTimeout(r, 300));
    const denied = await run("mosquitto_pub", [...h.tlsArgs(d2), "-V", version, "-t", "devices/d1/commands/reboot", "-m", "no", "-q", "1", "-d"]);
    if (version === "mqttv5") expect(denied.stdout + denied.stderr).toMatch(/RC:135|Not authorized/);
    const sent = await run("mosquitto_pub", [...h.tlsArgs(commander), "-V", version, "-t", "devices/d1/commands/reboot", "-m", "yes", "-q", "1"]);
    expect(sent.status).toBe(0);
    expect(await exited).toBe(0);
    expect(out.trim()).toBe("devices/d1/commands/reboot yes");
  });

  it("MQTT.js (MQTT 5) sees reason code 135 for another device's topics, on publish and subscribe", async () => {
    const client = await h.connect(d1);
    expect(await publishReason(client, "devices/d1/telemetry/t")).toBeLessThan(128);
    expect(await publishReason(client, "devices/d2/telemetry/t")).toBe(135);
    expect(await subscribeGranted(client, ["devices/d1/commands/#", "devices/d2/commands/#"])).toEqual([0, 135]);
    client.end(true);
    const connected = await events("device.connected", "d1");
    expect(connected[0]!.data).toMatchObject({ protocol: "mqtt", method: "certificate", address: "127.0.0.1", dataPlane: "mosquitto" });
  });

  it("quarantine narrows the device to the quarantine role (Mosquitto 2.0 ends the session when a role's ACLs change)", async () => {
    const client = await h.connect(d2);
    const closed = new Promise<void>((resolve) => client.on("close", () => resolve()));
    expect(await publishReason(client, "devices/d2/telemetry/t")).toBeLessThan(128);
    const result = await h.cli(["device", "quarantine", "d2"]);
    expect(result.code).toBe(0);
    // dynsec disconnects the clients of a role whose ACLs change; the device comes back narrowed.
    await closed;
    const back = await waitUntil("a quarantined reconnect", async () => {
      const c = await h.connect(d2).catch(() => undefined);
      if (!c) return undefined;
      const telemetry = await publishReason(c, "devices/d2/telemetry/t").catch(() => -1);
      if (telemetry === 135) return c;
      c.end(true);
      return undefined;
    });
    expect(await publishReason(back, "devices/d2/status")).toBeLessThan(128);
    expect(await subscribeGranted(back, ["devices/d2/commands/#"])).toEqual([135]);
    const disconnected = await events("device.disconnected", "d2");
    expect(disconnected.some((e) => e.data?.reason === "permissions_changed")).toBe(true);
    back.end(true);
    expect((await h.cli(["device", "activate", "d2"])).code).toBe(0);
    await waitUntil("the device role back", async () => {
      const c = await h.connect(d2).catch(() => undefined);
      if (!c) return undefined;
      const telemetry = await publishReason(c, "devices/d2/telemetry/t").catch(() => -1);
      c.end(true);
      return telemetry >= 0 && telemetry < 128 ? true : undefined;
    });
  });

  it("revocation from the CLI closes the live session, the certificate is refused from then on, and a new one works", async () => {
    const victim = await h.device("d3");
    const client = await h.connect(victim);
    const closedAt = new Promise<{ at: number; reason?: number }>((resolve) => {
      client.on("disconnect", (packet) => resolve({ at: Date.now(), reason: packet.reasonCode }));
      client.on("close", () => resolve({ at: Date.now() }));
    });
    const started = Date.now();
    const revoke = await h.cli(["cert", "revoke", victim.serial, "--reason", "keyCompromise"]);
    expect(revoke.code).toBe(0);
    const closed = await closedAt;
    // The CLI process itself takes most of this; the session ends once the row is committed.
    expect(closed.at).toBeGreaterThan(started);
    const again = await run("mosquitto_pub", [...h.tlsArgs(victim), "-V", "mqttv5", "-t", "devices/d3/telemetry/t", "-m", "x", "-q", "1"]);
    expect(again.status).not.toBe(0);
    await waitUntil("auth.failed for the revoked certificate", async () => (await events("auth.failed")).length > 0 || undefined);
    await waitUntil("device.disconnected with cause cert_revoked", async () => ((await events("device.disconnected", "d3")).some((e) => e.data?.reason === "cert_revoked") ? true : undefined), 5_000);
    const renewed = await h.device("d3");
    const fresh = await h.connect(renewed);
    expect(await publishReason(fresh, "devices/d3/telemetry/t")).toBeLessThan(128);
    fresh.end(true);
  });

  it("suspension closes the session; a suspended device that reconnects has no permissions and is put out at once", async () => {
    const dev = await h.device("d4");
    const client = await h.connect(dev);
    const closed = new Promise<void>((resolve) => client.on("close", () => resolve()));
    expect((await h.cli(["device", "suspend", "d4"])).code).toBe(0);
    await closed;
    // The TLS handshake still succeeds (the certificate is not revoked); Moat puts the session out at once.
    const back = await h.connect(dev).catch(() => null);
    if (back) {
      const kicked = new Promise<void>((resolve) => (back.connected ? back.on("close", () => resolve()) : resolve()));
      const reason = await publishReason(back, "devices/d4/telemetry/t").catch(() => 135);
      expect(reason).toBe(135);
      await kicked;
    }
    await waitUntil("the suspended device's second disconnect", async () => ((await events("device.disconnected", "d4")).length >= 2 ? true : undefined));
    const reasons = (await events("device.disconnected", "d4")).map((e) => e.data?.reason);
    expect(reasons, JSON.stringify(reasons)).toContain("device_suspended");
  });

  it("moat mosquitto status shows drift and --fix repairs it", async () => {
    const clean = await h.cli(["mosquitto", "status", "--json"]);
    expect(clean.code).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({ inSync: true, extraClients: [], differingRoles: [] });
    const password = (await sealedSecrets(h.app.meta, h.app.envelope).get(adminSecretName(h.dir))).toString("utf8");
    const admin = await DynsecAdmin.connect(mosquittoPaths(h.dir).socket, password, { reconnect: false });
    await admin.runOrThrow([
      { command: "createClient", username: "intruder" },
      { command: "addRoleACL", rolename: "moat-device:d1", acltype: "publishClientSend", topic: "#", priority: 5, allow: true },
    ]);
    await admin.close();
    const drift = await h.cli(["mosquitto", "status", "--json"]);
    expect(drift.code).toBe(1);
    const report = JSON.parse(drift.stdout);
    expect(report.inSync).toBe(false);
    expect(report.extraClients).toEqual(["intruder"]);
    expect(report.differingRoles.map((r: { rolename: string }) => r.rolename)).toEqual(["moat-device:d1"]);
    expect((await h.cli(["mosquitto", "status", "--fix", "--json"])).code).toBe(0);
    expect(JSON.parse((await h.cli(["mosquitto", "status", "--json"])).stdout).inSync).toBe(true);
  });

  it("after kill -9 of Mosquitto, moat serve restarts it and resynchronises, including changes made while it was down", async () => {
    const pid = h.mosquittoPid();
    expect(pid).not.toBeNull();
    process.kill(pid!, "SIGKILL");
    await h.app.policy.createRole("wide", [{ effect: "allow", action: "publish", resource: "shared/#" }], "test");
    await h.app.policy.assignRole("wide", { kind: "device", target: "d1" }, "test");
    await waitUntil("a restarted Mosquitto", () => (h.mosquittoPid() !== pid && h.mosquittoPid() !== null ? true : undefined), 20_000);
    const client = await waitUntil("a connection after the restart", () => h.connect(d1).catch(() => undefined), 20_000);
    await waitUntil("the change made while Mosquitto was down", async () => ((await publishReason(client, "shared/x")) < 128 ? true : undefined), 10_000);
    expect(await publishReason(client, "devices/d2/telemetry/t")).toBe(135);
    client.end(true);
    expect(JSON.parse((await h.cli(["mosquitto", "status", "--json"])).stdout).inSync).toBe(true);
  });

  it("a new issuing CA: Mosquitto is restarted with the new CA bundle; old and new certificates both connect", async () => {
    const pid = h.mosquittoPid();
    const rotated = await h.cli(["ca", "rotate-issuer"]);
    expect(rotated.code).toBe(0);
    await waitUntil("Mosquitto restarted for the new CA bundle", () => (h.mosquittoPid() !== pid ? true : undefined), 20_000);
    const fresh = await h.device("d5");
    // Signed by the new issuing CA, which Mosquitto only knows after the restart.
    expect(new X509Certificate(fresh.certPem).issuer).not.toBe(new X509Certificate(d1.certPem).issuer);
    const client = await waitUntil("a certificate of the new issuing CA accepted", () => h.connect(fresh).catch(() => undefined), 20_000);
    expect(await publishReason(client, "devices/d5/telemetry/t")).toBeLessThan(128);
    client.end(true);
    const old = await h.connect(d1);
    expect(await publishReason(old, "devices/d1/telemetry/t")).toBeLessThan(128);
    old.end(true);
  });

  it("Mosquitto ends with moat serve and the listener key is removed", async () => {
    const pid = h.mosquittoPid()!;
    await h.stopServe();
    await waitUntil("Mosquitto gone", () => {
      try {
        process.kill(pid, 0);
        return undefined;
      } catch {
        return true;
      }
    });
    expect(existsSync(mosquittoPaths(h.dir).runDir)).toBe(false);
  });
});
