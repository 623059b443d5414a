/**
 * mTLS device authentication with MQTT.js over real TLS: who gets in, who is refused and why, and
 * that every refusal is a CONNACK plus an `auth.failed` event naming the reason.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireCommand } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";
import { closed, connectMqtt, counterValue, inbox, settle, startTestBroker, type TestBroker } from "./helpers/harness.js";
import { createTestPki, type IssuedCert, type TestPki } from "./helpers/test-pki.js";

const ok = requireCommand("openssl", "openssl");

describe.skipIf(!ok)("broker: mTLS authentication (MQTT.js)", () => {
  const tmp = tempDir("moat-broker-mtls-");
  let pki: TestPki;
  let tb: TestBroker;
  let alpha: IssuedCert;
  let beta: IssuedCert;

  beforeAll(async () => {
    pki = createTestPki(tmp.path);
    alpha = pki.device("alpha");
    beta = pki.device("beta");
    // Many refusals from 127.0.0.1 on purpose: the ban is tested on its own.
    tb = await startTestBroker(pki, { authFailureLimit: 1000 });
    tb.directory.put({ id: "alpha", certSerials: [alpha.serial] });
    tb.directory.put({ id: "beta", certSerials: [beta.serial] });
    tb.policy.assign("device", "device", "alpha");
    tb.policy.assign("device", "device", "beta");
  });

  afterAll(async () => {
    await tb?.close();
    tmp.cleanup();
  });

  const failureFor = (id: string, reason: string) => tb.events.waitFor((e) => e.type === "auth.failed" && e.data?.reason === reason && (e.subject === id || id === ""));

  it("accepts a device whose client id is its certificate's CN and records device.connected", async () => {
    const result = await connectMqtt(tb.port, pki, { clientId: "alpha", cert: alpha.certPem, key: alpha.keyPem });
    expect(result.ok).toBe(true);
    const event = await tb.events.waitFor((e) => e.type === "device.connected" && e.subject === "alpha");
    expect(event.data).toMatchObject({ method: "mtls", serial: alpha.serial, listener: "tls" });
    if (result.ok) await result.client.endAsync();
    await tb.events.waitFor((e) => e.type === "device.disconnected" && e.subject === "alpha");
  });

  it("delivers an allowed command to its device and nothing across devices", async () => {
    const a = await connectMqtt(tb.port, pki, { clientId: "alpha", cert: alpha.certPem, key: alpha.keyPem });
    const b = await connectMqtt(tb.port, pki, { clientId: "beta", cert: beta.certPem, key: beta.keyPem });
    if (!a.ok || !b.ok) throw new Error("connect failed");
    const box = inbox(a.client);
    const granted = await a.client.subscribeAsync("devices/alpha/commands/#", { qos: 1 });
    expect(granted[0]!.qos).toBe(1);
    // beta may not publish into alpha's command topic: acknowledged, dropped, never delivered.
    await b.client.publishAsync("devices/alpha/commands/reboot", "from-beta", { qos: 1 });
    await settle();
    expect(box.messages).toHaveLength(0);
    const denied = await tb.events.waitFor((e) => e.type === "acl.denied" && e.subject === "beta");
    expect(denied.data).toMatchObject({ action: "publish", topic: "devices/alpha/commands/reboot" });
    await a.client.endAsync();
    await b.client.endAsync();
  });

  it("refuses a connection without a client certificate or token", async () => {
    const result = await connectMqtt(tb.port, pki, { clientId: "alpha" });
    expect(result).toMatchObject({ ok: false, returnCode: 5 });
    await failureFor("alpha", "no_client_certificate");
  });

  it("refuses a certificate from another CA", async () => {
    const foreign = pki.foreign().device("alpha");
    const result = await connectMqtt(tb.port, pki, { clientId: "alpha", cert: foreign.certPem, key: foreign.keyPem });
    expect(result).toMatchObject({ ok: false, returnCode: 5 });
    const event = await failureFor("alpha", "cert_untrusted");
    expect(event.data?.detail).toEqual(expect.stringMatching(/\S/));
  });

  it("refuses a certificate that chains to Moat's root but not through an issuing CA", async () => {
    const direct = pki.fromRoot("alpha");
    tb.directory.update("alpha", { certSerials: [alpha.serial, direct.serial] });
    const result = await connectMqtt(tb.port, pki, { clientId: "alpha", cert: direct.certPem, key: direct.keyPem });
    expect(result).toMatchObject({ ok: false, returnCode: 5 });
    await failureFor("alpha", "cert_wrong_issuer");
    tb.directory.update("alpha", { certSerials: [alpha.serial] });
  });

  it("refuses an expired certificate", async () => {
    const old = pki.device("alpha", { expired: true });
    tb.directory.update("alpha", { certSerials: [alpha.serial, old.serial] });
    const result = await connectMqtt(tb.port, pki, { clientId: "alpha", cert: old.certPem, key: old.keyPem });
    expect(result).toMatchObject({ ok: false, returnCode: 5 });
    await failureFor("alpha", "cert_expired");
  });

  it("refuses a client id that is not the certificate's device id", async () => {
    const result = await connectMqtt(tb.port, pki, { clientId: "beta", cert: alpha.certPem, key: alpha.keyPem });
    expect(result).toMatchObject({ ok: false, returnCode: 2 });
    await failureFor("beta", "client_id_mismatch");
  });

  it("refuses a revoked certificate", async () => {
    const gamma = pki.device("gamma");
    tb.directory.put({ id: "gamma", certSerials: [gamma.serial] });
    tb.feed.push({ kind: "cert.revoked", subject: gamma.serial, data: { serial: gamma.serial, deviceId: "gamma", issuer: "01", reason: "keyCompromise", revokedAt: new Date().toISOString() } });
    const result = await connectMqtt(tb.port, pki, { clientId: "gamma", cert: gamma.certPem, key: gamma.keyPem });
    expect(result).toMatchObject({ ok: false, returnCode: 5 });
    await failureFor("gamma", "cert_revoked");
  });

  it("refuses a suspended device and an unknown one", async () => {
    const delta = pki.device("delta");
    tb.directory.put({ id: "delta", status: "suspended", certSerials: [delta.serial] });
    expect(await connectMqtt(tb.port, pki, { clientId: "delta", cert: delta.certPem, key: delta.keyPem })).toMatchObject({ ok: false, returnCode: 5 });
    await failureFor("delta", "device_suspended");
    const ghost = pki.device("ghost");
    expect(await connectMqtt(tb.port, pki, { clientId: "ghost", cert: ghost.certPem, key: ghost.keyPem })).toMatchObject({ ok: false, returnCode: 5 });
    await failureFor("ghost", "device_unknown");
  });

  it("refuses a valid certificate Moat does not list for the device", async () => {
    const stray = pki.device("beta");
    const result = await connectMqtt(tb.port, pki, { clientId: "beta", cert: stray.certPem, key: stray.keyPem });
    expect(result).toMatchObject({ ok: false, returnCode: 5 });
    await failureFor("beta", "cert_not_current");
  });

  it("refuses a server certificate used as a client certificate (wrong purpose)", async () => {
    const result = await connectMqtt(tb.port, pki, { clientId: "localhost", cert: pki.server.certPem, key: pki.server.keyPem });
    expect(result).toMatchObject({ ok: false, returnCode: 5 });
    const event = await failureFor("localhost", "cert_untrusted");
    expect(event.data?.detail).toBe("INVALID_PURPOSE");
  });

  it("closes a live session when its certificate is revoked", async () => {
    const eps = pki.device("epsilon");
    tb.directory.put({ id: "epsilon", certSerials: [eps.serial] });
    const result = await connectMqtt(tb.port, pki, { clientId: "epsilon", cert: eps.certPem, key: eps.keyPem });
    if (!result.ok) throw new Error(result.message);
    await tb.events.waitFor((e) => e.type === "device.connected" && e.subject === "epsilon");
    const gone = closed(result.client);
    tb.feed.push({ kind: "cert.revoked", subject: eps.serial, data: { serial: eps.serial, deviceId: "epsilon", issuer: "01", reason: "keyCompromise", revokedAt: new Date().toISOString() } });
    await gone;
    const event = await tb.events.waitFor((e) => e.type === "device.disconnected" && e.subject === "epsilon");
    expect(event.data?.reason).toBe("cert_revoked");
    expect(await counterValue(tb.broker.metrics.sessionsClosed, { cause: "cert_revoked" })).toBeGreaterThanOrEqual(1);
  });
});
