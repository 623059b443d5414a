/**
 * JWT device authentication (username = device id, password = token) over TLS without a client
 * certificate: device-signed ES256/EdDSA tokens, per-device HS256 secrets with a rotation grace period,
 * and every kind of bad token the issue lists.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireCommand } from "../helpers/requirements.js";
import { tempDir } from "../helpers/temp.js";
import { deviceJwt } from "./helpers/device-jwt.js";
import { closed, connectMqtt, startTestBroker, type TestBroker } from "./helpers/harness.js";
import { createTestPki, type TestPki } from "./helpers/test-pki.js";

const ok = requireCommand("openssl", "openssl");
const AUD = "moat-mqtt-test";

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const nowSec = () => Math.floor(Date.now() / 1000);

describe.skipIf(!ok)("broker: JWT device authentication", () => {
  const tmp = tempDir("moat-broker-jwt-");
  let pki: TestPki;
  let tb: TestBroker;
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const ed = generateKeyPairSync("ed25519");
  const currentSecret = randomBytes(32);
  const oldSecret = randomBytes(32);
  const expiredSecret = randomBytes(32);

  const token = (key: Parameters<typeof deviceJwt>[0], alg: string, claims: { sub?: string; aud?: string; iat?: number; exp?: number } = {}) => {
    const iat = claims.iat ?? nowSec();
    return deviceJwt(key, alg, { sub: claims.sub ?? "jdev", aud: claims.aud ?? AUD, iat, exp: claims.exp ?? iat + 3600 });
  };
  const connect = (password: string, username = "jdev", clientId = username) => connectMqtt(tb.port, pki, { clientId, username, password });
  const failure = (reason: string) => tb.events.waitFor((e) => e.type === "auth.failed" && e.data?.reason === reason);

  beforeAll(async () => {
    pki = createTestPki(tmp.path);
    tb = await startTestBroker(pki, { audience: AUD, authFailureLimit: 1000, mqttWssPort: 0 });
    tb.directory.put({
      id: "jdev",
      publicKeys: [
        { pem: ec.publicKey.export({ format: "pem", type: "spki" }).toString(), source: "registered" },
        { pem: ed.publicKey.export({ format: "pem", type: "spki" }).toString(), source: "registered" },
      ],
      hmacSecrets: [
        { secret: currentSecret, notAfter: null },
        { secret: oldSecret, notAfter: new Date(Date.now() + 3600_000).toISOString() },
        { secret: expiredSecret, notAfter: new Date(Date.now() - 1000).toISOString() },
      ],
    });
    tb.policy.assign("device", "device", "jdev");
  });

  afterAll(async () => {
    await tb?.close();
    tmp.cleanup();
  });

  it.each([
    ["ES256 signed by a registered device key", () => token(ec.privateKey, "ES256"), "jwt-key"],
    ["EdDSA signed by a registered device key", () => token(ed.privateKey, "EdDSA"), "jwt-key"],
    ["HS256 with the current secret", () => token(currentSecret, "HS256"), "jwt-secret"],
    ["HS256 with the previous secret inside its grace period", () => token(oldSecret, "HS256"), "jwt-secret"],
  ])("accepts %s", async (_name, make, method) => {
    const result = await connect(await make());
    expect(result.ok).toBe(true);
    if (result.ok) await result.client.endAsync();
    const event = await tb.events.waitFor((e) => e.type === "device.connected" && e.data?.method === method);
    expect(event.subject).toBe("jdev");
  });

  it("accepts a token over MQTT on secure WebSockets", async () => {
    const result = await connectMqtt(tb.broker.ports.wss!, pki, { clientId: "jdev", username: "jdev", password: await token(ec.privateKey, "ES256") }, "wss");
    expect(result.ok).toBe(true);
    if (result.ok) await result.client.endAsync();
    await tb.events.waitFor((e) => e.type === "device.connected" && e.data?.listener === "wss");
  });

  it("refuses an expired token", async () => {
    const iat = nowSec() - 7200;
    expect(await connect(await token(ec.privateKey, "ES256", { iat, exp: iat + 3600 }))).toMatchObject({ ok: false, returnCode: 4 });
    await failure("token_expired");
  });

  it("refuses a token for another audience", async () => {
    expect(await connect(await token(ec.privateKey, "ES256", { aud: "someone-else" }))).toMatchObject({ ok: false, returnCode: 4 });
    await failure("token_wrong_audience");
  });

  it("refuses a token whose subject is another device", async () => {
    expect(await connect(await token(ec.privateKey, "ES256", { sub: "other" }))).toMatchObject({ ok: false, returnCode: 4 });
    await failure("token_wrong_subject");
  });

  it("refuses an unsigned token (alg: none)", async () => {
    const unsigned = `${b64url({ alg: "none", typ: "JWT" })}.${b64url({ sub: "jdev", aud: AUD, iat: nowSec(), exp: nowSec() + 600 })}.`;
    expect(await connect(unsigned)).toMatchObject({ ok: false, returnCode: 4 });
    await failure("token_alg_none");
  });

  it("refuses HS256 signed with the device's public key as the secret (algorithm confusion)", async () => {
    const publicPem = Buffer.from(ec.publicKey.export({ format: "pem", type: "spki" }).toString());
    expect(await connect(await token(publicPem, "HS256"))).toMatchObject({ ok: false, returnCode: 4 });
    await failure("token_signature_invalid");
  });

  it("refuses algorithms outside the allow-lists", async () => {
    expect(await connect(await token(currentSecret, "HS512"))).toMatchObject({ ok: false, returnCode: 4 });
    await failure("token_alg_not_allowed");
  });

  it("refuses a token living longer than 24 hours", async () => {
    const iat = nowSec();
    expect(await connect(await token(ec.privateKey, "ES256", { iat, exp: iat + 25 * 3600 }))).toMatchObject({ ok: false, returnCode: 4 });
    await failure("token_lifetime_too_long");
  });

  it("refuses a token issued in the future beyond the clock skew", async () => {
    const iat = nowSec() + 600;
    expect(await connect(await token(ec.privateKey, "ES256", { iat, exp: iat + 600 }))).toMatchObject({ ok: false, returnCode: 4 });
    await failure("token_iat_invalid");
  });

  it("refuses a token made with a secret whose grace period is over", async () => {
    expect(await connect(await token(expiredSecret, "HS256"))).toMatchObject({ ok: false, returnCode: 4 });
    await failure("token_secret_grace_expired");
  });

  it("refuses a token signed by a key the device does not have", async () => {
    const stranger = generateKeyPairSync("ec", { namedCurve: "P-256" });
    expect(await connect(await token(stranger.privateKey, "ES256"))).toMatchObject({ ok: false, returnCode: 4 });
    await failure("token_signature_invalid");
  });

  it("refuses garbage and a username that is not the client id", async () => {
    expect(await connect("not-a-jwt")).toMatchObject({ ok: false, returnCode: 4 });
    await failure("token_malformed");
    expect(await connect(await token(ec.privateKey, "ES256"), "jdev", "someone")).toMatchObject({ ok: false, returnCode: 2 });
    await failure("client_id_mismatch");
  });

  it("ends a session when the secret it used leaves its grace period", async () => {
    const shortLived = randomBytes(32);
    tb.directory.put({ id: "rotating", hmacSecrets: [{ secret: randomBytes(32), notAfter: null }, { secret: shortLived, notAfter: new Date(Date.now() + 1500).toISOString() }] });
    tb.policy.assign("device", "device", "rotating");
    const result = await connectMqtt(tb.port, pki, { clientId: "rotating", username: "rotating", password: await token(shortLived, "HS256", { sub: "rotating" }) });
    if (!result.ok) throw new Error(result.message);
    await closed(result.client);
    const event = await tb.events.waitFor((e) => e.type === "device.disconnected" && e.subject === "rotating");
    expect(event.data?.reason).toBe("credential_expired");
  });

  it("closes a token session when its secret is rotated out (credential.changed)", async () => {
    const secret = randomBytes(32);
    tb.directory.put({ id: "rot2", hmacSecrets: [{ secret, notAfter: null }] });
    tb.policy.assign("device", "device", "rot2");
    const result = await connectMqtt(tb.port, pki, { clientId: "rot2", username: "rot2", password: await token(secret, "HS256", { sub: "rot2" }) });
    if (!result.ok) throw new Error(result.message);
    await tb.events.waitFor((e) => e.type === "device.connected" && e.subject === "rot2");
    const gone = closed(result.client);
    tb.directory.update("rot2", { hmacSecrets: [{ secret: randomBytes(32), notAfter: null }] });
    tb.feed.push({ kind: "credential.changed", subject: "rot2", data: { deviceId: "rot2", secretId: "new" } });
    await gone;
    const event = await tb.events.waitFor((e) => e.type === "device.disconnected" && e.subject === "rot2");
    expect(event.data?.reason).toBe("secret_rotated");
  });
});
