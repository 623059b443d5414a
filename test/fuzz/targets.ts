/**
 * The fuzz targets: every parser an outsider can reach, each entered through its domain's door with
 * the inputs a peer controls. Shared by `npm run fuzz` (test/fuzz/run.ts, at least 100,000 cases per
 * target) and the short run in `npm test` (test/fuzz/fuzz.test.ts).
 *
 * The property for every target: the entry point returns a result or throws a `MoatError` whose code
 * is in the table of src/errors.ts; any other exception, or a case that takes longer than the time
 * bound, is a failure. Found crashes stay in `REGRESSIONS` and are replayed before the random cases.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import type { Client } from "aedes";
import fc from "fast-check";
import { SignJWT } from "jose";
import mqttPacket from "mqtt-packet";
import { Authenticator } from "../../src/broker/authenticator.js";
import { guardPacketSize } from "../../src/broker/frame-guard.js";
import { InMemoryDeviceDirectory } from "../../src/broker/memory-directory.js";
import { RevocationView } from "../../src/broker/revocation-view.js";
import { resolveBrokerSettings } from "../../src/broker/settings.js";
import { ALG, COSE_TAG, CborTag, encodeCbor, encrypt0, decrypt0, HEADER, Keyring, sign1, verify1 } from "../../src/crypto/index.js";
import { ERROR_CODES, MoatError } from "../../src/errors.js";
import { verifyFirmware } from "../../src/firmware/verify.js";
import { isDeviceId } from "../../src/identity/index.js";
import { analyzePolicy, importMud } from "../../src/network/index.js";
import { explicit, nullValue, octetString, oid, sequence, unsignedInteger } from "../../src/crypto/der/encode.js";
import { OID } from "../../src/pki/oids.js";
import { createCaHierarchy, parseCertificate, parseOcspRequest, verifyCsr } from "../../src/pki/index.js";
import { BUILTIN_ROLES, compilePolicy } from "../../src/policy/index.js";
import { buildCsr } from "../pki-fixture.js";
import { signingSetup, signedManifestFor, writeImage } from "../firmware-fixtures.js";
import { apiBodiesTarget, estBodyTarget } from "./api-targets.js";
import { bytesInput, jsonText, yamlText } from "./mutations.js";
import { tufMetadataTarget } from "./tuf-target.js";

/** A prepared target: how to make inputs and how to feed one to the entry point. */
export interface FuzzHarness<T = unknown> {
  input: fc.Arbitrary<T>;
  run(input: T): unknown;
  close?(): Promise<void>;
}

export interface FuzzTarget {
  name: string;
  /** What the target enters and with which input. */
  entry: string;
  setup(): Promise<FuzzHarness>;
  /** Inputs that once crashed the entry point; replayed first on every run. */
  regressions?: readonly unknown[];
}

/** One case's verdict: null when the property holds. */
export async function judgeCase(harness: FuzzHarness, input: unknown, timeBoundMs: number): Promise<string | null> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = harness.run(input);
    if (result instanceof Promise) {
      const hang = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new HangError(timeBoundMs)), timeBoundMs);
      });
      await Promise.race([result, hang]);
    }
  } catch (error) {
    if (error instanceof HangError) return error.message;
    if (!(error instanceof MoatError)) return `uncoded ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;
    if (!(error.code in ERROR_CODES)) return `MoatError with an undocumented code ${String(error.code)}`;
  } finally {
    clearTimeout(timer);
  }
  // A synchronous parser cannot be interrupted; a case over the bound is reported once it returns.
  const elapsed = performance.now() - started;
  return elapsed > timeBoundMs ? `took ${Math.round(elapsed)} ms (bound ${timeBoundMs} ms)` : null;
}

class HangError extends Error {
  constructor(bound: number) {
    super(`no answer within ${bound} ms`);
  }
}

/** For targets whose entry answers with a verdict instead of throwing: a thrown error is itself wrong. */
async function mustNotThrow(work: () => unknown): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (error instanceof MoatError) throw new Error(`unexpected MoatError ${error.code}: ${error.message}`, { cause: error });
    throw error;
  }
}

const ocspRequest = (serial: Buffer, nonce: Buffer | null): Buffer =>
  sequence(
    sequence(
      sequence(sequence(sequence(sequence(oid(OID.sha1), nullValue()), octetString(randomBytes(20)), octetString(randomBytes(20)), unsignedInteger(serial)))),
      ...(nonce ? [explicit(2, sequence(sequence(oid(OID.ocspNonce), octetString(octetString(nonce)))))] : []),
    ),
  );

const csrTarget: FuzzTarget = {
  name: "csr",
  entry: "pki door verifyCsr (EST and POST /v1/certificates bodies, DER or PEM)",
  async setup() {
    const samples = [buildCsr({ subject: [[OID.commonName, "dev-1"]] }).der, buildCsr({ keyType: "ed25519", subject: [[OID.commonName, "dev-2"]], requestCa: true }).der, buildCsr({ keyType: "p384" }).der];
    const pem = (der: Buffer) => `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64").replace(/(.{64})/g, "$1\n")}\n-----END CERTIFICATE REQUEST-----\n`;
    return {
      input: fc.oneof({ weight: 4, arbitrary: bytesInput(samples) }, { weight: 1, arbitrary: jsonText([JSON.stringify(pem(samples[0]!))]).map((t) => pem(Buffer.from(t))) }),
      run: (input: Buffer | string) => verifyCsr(input),
    } satisfies FuzzHarness<Buffer | string> as FuzzHarness;
  },
};

const certificateTarget: FuzzTarget = {
  name: "certificate",
  entry: "pki door parseCertificate (client certificates at EST re-enrollment and factory enrollment)",
  // Found by this fuzzer: the DER reader's errors escaped uncoded (now PKI_CERT_MALFORMED).
  regressions: [Buffer.alloc(0), Buffer.from("d89a", "hex"), Buffer.from("308201c130820166a003020102021052ae5802f13aa1573a", "hex")],
  async setup() {
    const { root, issuing } = await createCaHierarchy({ keyType: "ec-p256", trustDomain: "fuzz.example" });
    const ed = await createCaHierarchy({ keyType: "ed25519", trustDomain: "fuzz.example" });
    const samples = [root.certificateDer, issuing.certificateDer, ed.issuing.certificateDer];
    return { input: bytesInput(samples), run: (der: Buffer) => parseCertificate(der) } satisfies FuzzHarness<Buffer> as FuzzHarness;
  },
};

const ocspTarget: FuzzTarget = {
  name: "ocsp-request",
  entry: "pki door parseOcspRequest (the OCSP responder's POST body and GET path)",
  async setup() {
    const samples = [ocspRequest(Buffer.from([0x01, 0x02]), randomBytes(16)), ocspRequest(randomBytes(20), null)];
    return { input: bytesInput(samples), run: (der: Buffer) => parseOcspRequest(der) } satisfies FuzzHarness<Buffer> as FuzzHarness;
  },
};

const mqttFramesTarget: FuzzTarget = {
  name: "mqtt-frames",
  entry: "broker frame guard (guardPacketSize) in front of the MQTT packet parser aedes uses, bytes in arbitrary chunks",
  async setup() {
    const generate = (packet: object) => mqttPacket.generate(packet as never) as Buffer;
    const samples = [
      Buffer.concat([
        generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, clientId: "dev-1", keepalive: 30, username: "dev-1", password: Buffer.from("a.b.c") }),
        generate({ cmd: "publish", topic: "devices/dev-1/telemetry", payload: Buffer.from("{}"), qos: 1, messageId: 7, retain: false, dup: false }),
        generate({ cmd: "subscribe", messageId: 8, subscriptions: [{ topic: "devices/dev-1/#", qos: 1 }] }),
        generate({ cmd: "pingreq" }),
      ]),
      generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 5, clean: true, clientId: "dev-2", keepalive: 0, properties: { sessionExpiryInterval: 10, receiveMaximum: 5 }, will: { topic: "t", payload: Buffer.from("x"), qos: 0, retain: false } }),
    ];
    const MAX = 4096;
    return {
      input: fc.tuple(bytesInput(samples), fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 8 })),
      run: ([bytes, cuts]: [Buffer, number[]]) =>
        mustNotThrow(() => {
          const stream = new PassThrough();
          let violation: number | null = null;
          guardPacketSize(stream, MAX, (announced) => {
            if (violation !== null) throw new Error("onViolation called twice");
            violation = announced;
          });
          const parser = mqttPacket.parser({ protocolVersion: 5 });
          // The parser reports malformed packets as 'error' events; aedes closes the connection on them.
          parser.on("error", () => undefined);
          parser.on("packet", () => undefined);
          stream.on("data", (chunk: Buffer) => {
            if (violation === null) parser.parse(chunk);
          });
          stream.on("error", () => undefined);
          let at = 0;
          for (const cut of [...cuts, bytes.length]) {
            if (at >= bytes.length || stream.destroyed) break;
            stream.write(bytes.subarray(at, at + cut));
            at += cut;
          }
          stream.end();
          if (violation !== null && !stream.destroyed) throw new Error("the guard tripped but left the stream open");
        }),
    } satisfies FuzzHarness<[Buffer, number[]]> as FuzzHarness;
  },
};

const jwtTarget: FuzzTarget = {
  name: "jwt",
  entry: "broker Authenticator.authenticate with a device JWT as the MQTT password (jwt-auth.ts verifyDeviceToken)",
  async setup() {
    const directory = new InMemoryDeviceDirectory(isDeviceId);
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const ed = generateKeyPairSync("ed25519");
    const secret = randomBytes(32);
    directory.put({
      id: "dev-1",
      publicKeys: [
        { pem: ec.publicKey.export({ format: "pem", type: "spki" }).toString(), source: "registered", id: "key:ec" },
        { pem: ed.publicKey.export({ format: "pem", type: "spki" }).toString(), source: "registered", id: "key:ed" },
      ],
      hmacSecrets: [{ secret, notAfter: null }],
    });
    const settings = resolveBrokerSettings({ audience: "moat-mqtt", authFailureLimit: 1_000_000_000 });
    const authenticator = new Authenticator({
      directory,
      revocations: new RevocationView(),
      decider: compilePolicy({ roles: [...BUILTIN_ROLES], assignments: [{ role: "device", kind: "device", target: "dev-1" }] }),
      settings,
      issuingCas: () => [],
    });
    const now = Math.floor(Date.now() / 1000);
    const sign = (key: KeyObject | Uint8Array, alg: string) =>
      new SignJWT({ extra: "x" }).setProtectedHeader({ alg, kid: "k" }).setSubject("dev-1").setAudience("moat-mqtt").setIssuedAt(now).setExpirationTime(now + 300).sign(key);
    const samples = [await sign(ec.privateKey, "ES256"), await sign(ed.privateKey, "EdDSA"), await sign(secret, "HS256")];
    // Structure-aware: mutate the decoded header and claims, keep the (now wrong) signature.
    const segments = samples.map((t) => t.split("."));
    const reencoded = fc
      .tuple(fc.constantFrom(...segments), jsonText(segments.map((s) => Buffer.from(s[0]!, "base64url").toString())), jsonText(segments.map((s) => Buffer.from(s[1]!, "base64url").toString())), fc.boolean())
      .map(([s, header, claims, keepHeader]) => `${keepHeader ? s[0] : Buffer.from(header).toString("base64url")}.${Buffer.from(claims).toString("base64url")}.${s[2]}`);
    const client = {} as Client;
    return {
      input: fc.oneof(
        { weight: 4, arbitrary: bytesInput(samples.map((s) => Buffer.from(s))) },
        { weight: 4, arbitrary: reencoded.map((s) => Buffer.from(s)) },
        { weight: 1, arbitrary: fc.string({ maxLength: 64 }).map((s) => Buffer.from(s)) },
      ),
      run: (password: Buffer) =>
        mustNotThrow(() => authenticator.authenticate({ client, clientId: "dev-1", username: "dev-1", password, will: null, tls: null, address: "127.0.0.1", listener: "mqtts" })),
    } satisfies FuzzHarness<Buffer> as FuzzHarness;
  },
};

const coseTarget: FuzzTarget = {
  name: "cose",
  entry: "crypto door verify1 (COSE_Sign1) and decrypt0 (COSE_Encrypt0) on device payloads",
  async setup() {
    const signer = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const edSigner = generateKeyPairSync("ed25519");
    const kid = Buffer.from("sensor-1");
    const publicKeys = new Map([[kid.toString("hex"), signer.publicKey]]);
    const keyring = new Keyring().add(kid, randomBytes(32));
    const contentKey = randomBytes(32);
    keyring.add("k2", contentKey);
    const topic = "devices/dev-1/telemetry";
    const signed = [sign1(Buffer.from("{\"t\":21.5}"), { key: signer.privateKey, kid, seq: 5, externalAad: topic } as never), sign1(Buffer.from("x"), { key: edSigner.privateKey } as never)];
    const sealed = [encrypt0(Buffer.from("secret"), { key: contentKey, kid: "k2", seq: 9, externalAad: topic })];
    // Generated COSE structures: arbitrary header maps under the right tags.
    const headerValue = fc.oneof(fc.integer({ min: -70000, max: 70000 }), fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.from(b)), fc.string({ maxLength: 8 }), fc.array(fc.integer({ min: -70000, max: 10 }), { maxLength: 3 }), fc.constant(null));
    const headerKey = fc.oneof(fc.constantFrom(HEADER.alg, HEADER.crit, HEADER.kid, HEADER.iv, HEADER.partialIv, HEADER.moatSequence, HEADER.moatTopicHint), fc.integer({ min: -70000, max: 70000 }));
    const headerMap = fc.array(fc.tuple(headerKey, headerValue), { maxLength: 5 }).map((entries) => new Map(entries));
    const structured = fc
      .tuple(fc.constantFrom(COSE_TAG.Sign1, COSE_TAG.Encrypt0, 96, 99), headerMap, headerMap, fc.uint8Array({ maxLength: 32 }), fc.uint8Array({ maxLength: 80 }), fc.boolean(), fc.constantFrom(ALG.ES256, ALG.EdDSA, ALG.A256GCM, -999))
      .map(([tag, prot, unprot, payload, sig, withAlg, alg]) => {
        if (withAlg) prot.set(HEADER.alg, alg);
        const protectedBytes = prot.size === 0 ? Buffer.alloc(0) : encodeCbor(prot);
        const body = tag === COSE_TAG.Encrypt0 ? [protectedBytes, unprot, Buffer.from(payload)] : [protectedBytes, unprot, Buffer.from(payload), Buffer.from(sig)];
        return encodeCbor(new CborTag(body, tag));
      });
    return {
      input: fc.tuple(fc.oneof({ weight: 6, arbitrary: bytesInput([...signed, ...sealed]) }, { weight: 3, arbitrary: structured }), fc.boolean()),
      run: ([message, asSign1]: [Buffer, boolean]) =>
        asSign1 ? verify1(message, { keys: { get: (k: Buffer) => publicKeys.get(k.toString("hex")) }, externalAad: topic } as never) : decrypt0(message, { keys: keyring, externalAad: topic }),
    } satisfies FuzzHarness<[Buffer, boolean]> as FuzzHarness;
  },
};

const manifestTarget: FuzzTarget = {
  name: "firmware-manifest",
  entry: "firmware verify door verifyFirmware (the device's secure-boot check of a downloaded manifest)",
  async setup() {
    const { mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "moat-fuzz-fw-"));
    const setup = await signingSetup();
    const image = writeImage(dir, "image.bin", 256);
    const manifest = await signedManifestFor(image, setup);
    const imageBytes = readFileSync(image);
    const samples = [JSON.stringify(manifest)];
    const policy = { trustedRoots: [setup.rootKey], hardwareId: "sensor-v2", minSecurityVersion: 0 };
    return {
      input: jsonText(samples),
      // The image is streamed from memory: each case reads it again.
      run: (text: string) => verifyFirmware((async function* () { yield imageBytes; })(), text, policy),
      close: async () => {
        const { rm } = await import("node:fs/promises");
        await rm(dir, { recursive: true, force: true });
      },
    } satisfies FuzzHarness<string> as FuzzHarness;
  },
};

const segmentationTarget: FuzzTarget = {
  name: "segmentation-yaml",
  entry: "network door analyzePolicy (the segmentation policy file, YAML)",
  // Found by this fuzzer: a service named after an Object.prototype member crashed the rule parser.
  regressions: ["vlans:\n  - id: 10\n    name: iot\n    subnet: 192.168.10.0/24\n    firewall_rules:\n      - allow: constructor\n      - allow: __proto__\n      - deny: all\n"],
  async setup() {
    const samples = ["network-segmentation.yml", "seed-network-segmentation.yml", "mud-site.yml"].map((f) => readFileSync(new URL(`../../examples/segmentation/${f}`, import.meta.url), "utf8"));
    return { input: yamlText(samples), run: (text: string) => analyzePolicy(text) } satisfies FuzzHarness<string> as FuzzHarness;
  },
};

const mudTarget: FuzzTarget = {
  name: "mud-json",
  entry: "network door importMud (a manufacturer's MUD file, RFC 8520 JSON)",
  async setup() {
    const samples = [readFileSync(new URL("../../examples/segmentation/thermostat.mud.json", import.meta.url), "utf8")];
    return { input: jsonText(samples), run: (text: string) => importMud(text, "thermostats") } satisfies FuzzHarness<string> as FuzzHarness;
  },
};

export const TARGETS: readonly FuzzTarget[] = [csrTarget, certificateTarget, ocspTarget, estBodyTarget, mqttFramesTarget, jwtTarget, coseTarget, manifestTarget, segmentationTarget, mudTarget, tufMetadataTarget, apiBodiesTarget];

/** Told when each case starts and ends, so a watchdog outside this thread can see a case that never returns. */
export interface CaseWatch {
  enter(input: unknown): void;
  leave(): void;
}

export interface TargetReport {
  name: string;
  cases: number;
  failures: number;
  /** The first failing inputs with their verdicts (hex for bytes). */
  examples: string[];
  ms: number;
}

export const show = (input: unknown): string => {
  const text = Buffer.isBuffer(input) ? `hex:${input.toString("hex")}` : JSON.stringify(input, (_, v: unknown) => (v && typeof v === "object" && (v as { type?: string }).type === "Buffer" ? `hex:${Buffer.from((v as { data: number[] }).data).toString("hex")}` : v));
  return text.length > 600 ? `${text.slice(0, 600)}…` : text;
};

/** Runs the regressions, then `runs` generated cases; every failing case is counted (the run goes on). */
export async function runTarget(target: FuzzTarget, runs: number, options: { seed?: number; timeBoundMs?: number; watch?: CaseWatch } = {}): Promise<TargetReport> {
  const bound = options.timeBoundMs ?? 2000;
  const harness = await target.setup();
  const started = performance.now();
  let cases = 0;
  let failures = 0;
  const examples: string[] = [];
  const judge = async (input: unknown) => {
    cases++;
    options.watch?.enter(input);
    const verdict = await judgeCase(harness, input, bound);
    options.watch?.leave();
    if (verdict !== null) {
      failures++;
      if (examples.length < 5) examples.push(`${verdict} <- ${show(input)}`);
    }
  };
  try {
    for (const input of target.regressions ?? []) await judge(input);
    await fc.assert(fc.asyncProperty(harness.input, judge), { numRuns: runs, ...(options.seed === undefined ? {} : { seed: options.seed }), endOnFailure: true });
  } finally {
    await harness.close?.();
  }
  return { name: target.name, cases, failures, examples, ms: performance.now() - started };
}
