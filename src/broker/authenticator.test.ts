/**
 * CONNECT decisions, without a broker: real TLS sockets on loopback carrying certificates made by
 * openssl, real device keys and secrets signing real JWTs, the in-memory directory port fed with them,
 * and the real policy engine deciding wills. Each outcome is checked with its reason and CONNACK code.
 */
import { generateKeyPairSync, randomBytes, X509Certificate, type KeyObject } from "node:crypto";
import { once } from "node:events";
import tls, { type TLSSocket } from "node:tls";
import type { Client } from "aedes";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deviceJwt } from "../../test/broker/helpers/device-jwt.js";
import { PolicyHolder } from "../../test/broker/helpers/harness.js";
import { createTestPki, type IssuedCert, type TestPki } from "../../test/broker/helpers/test-pki.js";
import { requireCommand } from "../../test/helpers/requirements.js";
import { tempDir } from "../../test/helpers/temp.js";
import { secretId } from "../crypto/index.js";
import { isDeviceId } from "../identity/index.js";
import { BUILTIN_ROLES } from "../policy/index.js";
import { Authenticator, CONNACK, type ConnectAccepted, type ConnectContext, type ConnectRefusal } from "./authenticator.js";
import { issuingCasOf } from "./cert-auth.js";
import { InMemoryDeviceDirectory } from "./memory-directory.js";
import { RevocationView } from "./revocation-view.js";
import { resolveBrokerSettings } from "./settings.js";

const ok = requireCommand("openssl", "openssl");
const AUDIENCE = "moat-mqtt";
const NOW = Date.now();

/** The aedes client is only carried into the session; no decision reads it. */
const client = {} as Client;

describe.skipIf(!ok)("broker: authenticator", () => {
  const tmp = tempDir("moat-authenticator-");
  let pki: TestPki;
  let server: tls.Server;
  const sockets: TLSSocket[] = [];
  const directory = new InMemoryDeviceDirectory(isDeviceId);
  const revocations = new RevocationView();
  // dev-1 holds the built-in device role (publish under devices/dev-1/…), as its registry role gives it.
  const decider = new PolicyHolder([...BUILTIN_ROLES], [{ role: "device", kind: "device", target: "dev-1" }]);
  const authenticator = (now = NOW): Authenticator =>
    new Authenticator({
      directory,
      revocations,
      decider,
      settings: resolveBrokerSettings({ audience: AUDIENCE, authFailureLimit: 3 }),
      issuingCas: () => issuingCasOf([pki.issuing.certPem]),
      now: () => now,
    });
  const certs: Record<string, IssuedCert> = {};
  const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const ed = generateKeyPairSync("ed25519");
  const current = randomBytes(32);
  const previous = randomBytes(32);
  const GRACE_END = NOW + 60_000;

  /** The server side of a real TLS connection on which the client presented `cert` (or none). */
  async function serverSocket(cert?: IssuedCert): Promise<TLSSocket> {
    const accepted = once(server, "secureConnection") as Promise<[TLSSocket]>;
    const port = (server.address() as { port: number }).port;
    const clientSocket = tls.connect({ host: "127.0.0.1", port, ca: pki.chainPem, servername: "localhost", ...(cert ? { cert: cert.certPem, key: cert.keyPem } : {}) });
    clientSocket.on("error", () => {});
    sockets.push(clientSocket);
    const [socket] = await accepted;
    sockets.push(socket);
    return socket;
  }

  const context = (over: Partial<ConnectContext>): ConnectContext => ({
    client,
    clientId: "",
    username: undefined,
    password: undefined,
    will: null,
    tls: null,
    address: "127.0.0.1",
    listener: "mqtts",
    ...over,
  });
  const viaCert = async (cert: IssuedCert | undefined, over: Partial<ConnectContext> = {}): Promise<ConnectAccepted | ConnectRefusal> =>
    authenticator().authenticate(context({ tls: await serverSocket(cert), ...over }));
  const viaToken = (deviceId: string, token: string, over: Partial<ConnectContext> = {}, now = NOW): Promise<ConnectAccepted | ConnectRefusal> =>
    authenticator(now).authenticate(context({ clientId: deviceId, username: deviceId, password: Buffer.from(token), listener: "mqtt-plain", ...over }));
  const refused = (result: ConnectAccepted | ConnectRefusal): ConnectRefusal => {
    expect(result.ok, JSON.stringify(result.ok ? result.session.method : null)).toBe(false);
    return result as ConnectRefusal;
  };
  const accepted = (result: ConnectAccepted | ConnectRefusal): ConnectAccepted => {
    expect(result.ok, result.ok ? "" : `${(result as ConnectRefusal).reason} ${(result as ConnectRefusal).detail ?? ""}`).toBe(true);
    return result as ConnectAccepted;
  };

  /** A device JWT as the SDK makes one. */
  function jwt(key: KeyObject | Uint8Array, alg: string, claims: { sub?: string; aud?: string; iat?: number; exp?: number } = {}): Promise<string> {
    const iat = claims.iat ?? Math.floor(NOW / 1000);
    return deviceJwt(key, alg, { sub: claims.sub ?? "tok-1", aud: claims.aud ?? AUDIENCE, iat, exp: claims.exp ?? iat + 600 });
  }

  beforeAll(async () => {
    pki = createTestPki(tmp.path);
    for (const cn of ["dev-1", "dev-old", "dev-held", "dev-quiet", "dev-unknown", "dev-revoked"]) certs[cn] = pki.device(cn);
    certs.expired = pki.device("dev-expired", { expired: true });
    certs.rooted = pki.fromRoot("dev-rooted");
    certs.foreign = pki.foreign().device("dev-1");
    directory.put({ id: "dev-1", certSerials: [certs["dev-1"]!.serial] });
    directory.put({ id: "dev-old", certSerials: [] });
    directory.put({ id: "dev-held", status: "suspended", certSerials: [certs["dev-held"]!.serial] });
    directory.put({ id: "dev-quiet", status: "quarantined", certSerials: [certs["dev-quiet"]!.serial] });
    directory.put({ id: "dev-revoked", certSerials: [certs["dev-revoked"]!.serial] });
    directory.put({ id: "dev-expired", certSerials: [certs.expired.serial] });
    directory.put({ id: "dev-rooted", certSerials: [certs.rooted.serial] });
    revocations.add(certs["dev-revoked"]!.serial);
    directory.put({
      id: "tok-1",
      publicKeys: [
        { pem: ec.publicKey.export({ format: "pem", type: "spki" }).toString(), source: "registered", id: "key:ec" },
        { pem: ed.publicKey.export({ format: "pem", type: "spki" }).toString(), source: "registered", id: "key:ed" },
      ],
      hmacSecrets: [
        { secret: current, notAfter: null },
        { secret: previous, notAfter: new Date(GRACE_END).toISOString() },
      ],
    });
    directory.put({ id: "tok-held", status: "suspended", hmacSecrets: [{ secret: current, notAfter: null }] });
    server = tls.createServer({ key: pki.server.keyPem, cert: pki.server.certPem, ca: pki.chainPem, requestCert: true, rejectUnauthorized: false });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
    tmp.cleanup();
  });

  describe("client certificates", () => {
    it("accepts a current certificate of an active device: mTLS session until the certificate's notAfter", async () => {
      const { session } = accepted(await viaCert(certs["dev-1"], { clientId: "dev-1" }));
      expect(session).toMatchObject({ deviceId: "dev-1", method: "mtls", certSerial: certs["dev-1"]!.serial, credentialId: null, status: "active" });
      expect(session.deadline).toBe(Date.parse(new X509Certificate(certs["dev-1"]!.certPem).validTo));
      expect(session.subject).toMatchObject({ id: "dev-1", certCn: "dev-1" });
    });

    it("accepts a quarantined device (its role is narrowed by policy, not here)", async () => {
      expect(accepted(await viaCert(certs["dev-quiet"], { clientId: "dev-quiet" })).session.status).toBe("quarantined");
    });

    it.each([
      ["a client id other than the CN", "dev-1", { clientId: "dev-2" }, "client_id_mismatch", CONNACK.IDENTIFIER_REJECTED],
      ["a user name other than the CN", "dev-1", { clientId: "dev-1", username: "dev-2" }, "username_mismatch", CONNACK.BAD_USERNAME_OR_PASSWORD],
      ["a revoked certificate", "dev-revoked", { clientId: "dev-revoked" }, "cert_revoked", CONNACK.NOT_AUTHORIZED],
      ["a certificate that is no longer the device's current one", "dev-old", { clientId: "dev-old" }, "cert_not_current", CONNACK.NOT_AUTHORIZED],
      ["a device the directory does not know", "dev-unknown", { clientId: "dev-unknown" }, "device_unknown", CONNACK.NOT_AUTHORIZED],
      ["a suspended device", "dev-held", { clientId: "dev-held" }, "device_suspended", CONNACK.NOT_AUTHORIZED],
      ["an expired certificate", "expired", { clientId: "dev-expired" }, "cert_expired", CONNACK.NOT_AUTHORIZED],
      ["a certificate signed by the root, not the issuing CA", "rooted", { clientId: "dev-rooted" }, "cert_wrong_issuer", CONNACK.NOT_AUTHORIZED],
      ["a certificate from another hierarchy", "foreign", { clientId: "dev-1" }, "cert_untrusted", CONNACK.NOT_AUTHORIZED],
    ] as const)("refuses %s", async (_name, cert, over, reason, code) => {
      const result = refused(await viaCert(certs[cert], over));
      expect(result).toMatchObject({ reason, returnCode: code });
    });

    it("checks the client id by identity's device-id rule before any lookup", async () => {
      expect(refused(await viaCert(certs["dev-1"], { clientId: "dev/1" }))).toMatchObject({ reason: "client_id_invalid", returnCode: CONNACK.IDENTIFIER_REJECTED, claimedId: null });
      expect(refused(await viaCert(certs["dev-1"], { clientId: "" }))).toMatchObject({ reason: "client_id_missing", returnCode: CONNACK.IDENTIFIER_REJECTED });
    });

    it("without a certificate or a password, names what is missing", async () => {
      expect(refused(await viaCert(undefined, { clientId: "dev-1" }))).toMatchObject({ reason: "no_client_certificate" });
      expect(refused(await authenticator().authenticate(context({ clientId: "dev-1" })))).toMatchObject({ reason: "no_credentials" });
    });

    it("authorises the will at CONNECT with the device's policy", async () => {
      accepted(await viaCert(certs["dev-1"], { clientId: "dev-1", will: { topic: "devices/dev-1/events/gone", payload: Buffer.from("bye") } }));
      const foreign = refused(await viaCert(certs["dev-1"], { clientId: "dev-1", will: { topic: "devices/dev-2/events/gone", payload: Buffer.from("bye") } }));
      expect(foreign).toMatchObject({ reason: "will_denied", returnCode: CONNACK.NOT_AUTHORIZED });
      expect(refused(await viaCert(certs["dev-1"], { clientId: "dev-1", will: { topic: "$SYS/x", payload: Buffer.alloc(1) } }))).toMatchObject({ reason: "will_denied", detail: "reserved topic" });
    });
  });

  describe("device JWTs", () => {
    it("accepts ES256 and EdDSA tokens signed by a registered key, naming the key", async () => {
      const es = accepted(await viaToken("tok-1", await jwt(ec.privateKey, "ES256")));
      expect(es.session).toMatchObject({ deviceId: "tok-1", method: "jwt-key", credentialId: "key:ec", certSerial: null });
      const eddsa = accepted(await viaToken("tok-1", await jwt(ed.privateKey, "EdDSA")));
      expect(eddsa.session.credentialId).toBe("key:ed");
    });

    it("accepts HS256 with the current secret, and with the previous one only until its grace ends", async () => {
      const now = accepted(await viaToken("tok-1", await jwt(current, "HS256")));
      expect(now.session).toMatchObject({ method: "jwt-secret", credentialId: secretId(current) });
      const inGrace = accepted(await viaToken("tok-1", await jwt(previous, "HS256")));
      // The session ends when the secret's grace does, before the token's exp.
      expect(inGrace.session.deadline).toBe(GRACE_END);
      const iat = Math.floor((GRACE_END + 1000) / 1000);
      const late = refused(await viaToken("tok-1", await jwt(previous, "HS256", { iat }), {}, GRACE_END + 1000));
      expect(late).toMatchObject({ reason: "token_secret_grace_expired", returnCode: CONNACK.BAD_USERNAME_OR_PASSWORD });
    });

    const cases: [string, () => Promise<string>, string][] = [
      ["an unknown secret", () => jwt(randomBytes(32), "HS256"), "token_signature_invalid"],
      ["an unregistered key", () => jwt(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey, "ES256"), "token_signature_invalid"],
      ["the registered public key used as an HMAC secret (algorithm confusion)", () => jwt(Buffer.from(ec.publicKey.export({ format: "pem", type: "spki" })), "HS256"), "token_signature_invalid"],
      ["alg none", async () => `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from('{"sub":"tok-1"}').toString("base64url")}.`, "token_alg_none"],
      ["an algorithm outside the allow-list", () => jwt(randomBytes(48), "HS384"), "token_alg_not_allowed"],
      ["another audience", () => jwt(current, "HS256", { aud: "someone-else" }), "token_wrong_audience"],
      ["another device's subject", () => jwt(current, "HS256", { sub: "dev-1" }), "token_wrong_subject"],
      ["an expired token", () => jwt(current, "HS256", { iat: Math.floor(NOW / 1000) - 7200, exp: Math.floor(NOW / 1000) - 3600 }), "token_expired"],
      ["a lifetime over the maximum", () => jwt(current, "HS256", { exp: Math.floor(NOW / 1000) + 25 * 3600 }), "token_lifetime_too_long"],
      ["garbage", async () => "not.a.jwt!", "token_malformed"],
    ];
    it.each(cases)("refuses %s", async (_name, make, reason) => {
      expect(refused(await viaToken("tok-1", await make()))).toMatchObject({ reason, returnCode: CONNACK.BAD_USERNAME_OR_PASSWORD });
    });

    it("refuses a user name that is not the client id, an unknown device and a suspended one", async () => {
      const token = await jwt(current, "HS256");
      expect(refused(await viaToken("tok-1", token, { username: "tok-2" }))).toMatchObject({ reason: "client_id_mismatch", returnCode: CONNACK.IDENTIFIER_REJECTED });
      expect(refused(await viaToken("tok-nobody", token))).toMatchObject({ reason: "device_unknown", returnCode: CONNACK.BAD_USERNAME_OR_PASSWORD });
      expect(refused(await viaToken("tok-held", await jwt(current, "HS256", { sub: "tok-held" })))).toMatchObject({ reason: "device_suspended", returnCode: CONNACK.NOT_AUTHORIZED });
    });
  });

  it("bans an address after repeated failures, says so once, and still lets a valid credential through", async () => {
    const auth = authenticator();
    const bad = () => auth.authenticate(context({ clientId: "tok-1", username: "tok-1", password: Buffer.from("not-a-token"), address: "192.0.2.7" }));
    const results = [await bad(), await bad(), await bad(), await bad()].map(refused);
    expect(results.map((r) => r.reason)).toEqual(["token_malformed", "token_malformed", "token_malformed", "banned"]);
    // The third failure starts the ban (on the address and on the claimed id) and reports it; the fourth is only refused.
    expect(results.map((r) => r.banStarted !== undefined)).toEqual([false, false, true, false]);
    // A ban sheds guessing; a device with a valid token from the same address still connects.
    const good = await auth.authenticate(context({ clientId: "tok-1", username: "tok-1", password: Buffer.from(await jwt(current, "HS256")), address: "192.0.2.7" }));
    expect(accepted(good).session.deviceId).toBe("tok-1");
  });
});
