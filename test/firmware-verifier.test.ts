import { createHash, createHmac } from "node:crypto";
import { appendFileSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMoatError, type ErrorCode } from "../src/errors.js";
import {
  FileSecurityCounter,
  buildManifest,
  documentBytes,
  fromBase64Url,
  parsePublicKey,
  serializeManifest,
  serializePublicKey,
  signDocument,
  signManifest,
  signRevocationList,
  toBase64Url,
  verifyFirmware,
  verifyLegacyFirmware,
  type SignedManifest,
} from "../src/firmware/index.js";
import { tempDir } from "./helpers/temp.js";
import { signedManifestFor, signingSetup, writeImage, type FirmwareSigningSetup } from "./firmware-fixtures.js";

const dir = tempDir("moat-fw-verify-");
let ed: FirmwareSigningSetup;
let image: string;
let manifest: SignedManifest;

async function refusal(promise: Promise<unknown>): Promise<ErrorCode> {
  try {
    await promise;
  } catch (error) {
    if (isMoatError(error)) return error.code;
    throw error;
  }
  throw new Error("verification unexpectedly succeeded");
}

/** Re-signs an edited manifest body with the same key, so only the edit is under test. */
async function resign(edit: (body: Record<string, unknown>) => void, setup = ed): Promise<SignedManifest> {
  const body = JSON.parse(fromBase64Url(manifest.payload, "payload").toString("utf8"));
  edit(body);
  const signed = await signDocument(body, [setup.signer]);
  return { ...signed, certificates: [setup.certificate] };
}

beforeAll(async () => {
  ed = await signingSetup("ed25519");
  image = writeImage(dir.path, "image.bin", 300_000);
  manifest = await signedManifestFor(image, ed, { securityVersion: 5 });
});
afterAll(() => dir.cleanup());

describe("secure-boot verifier", () => {
  it("accepts a correctly signed image and reports the signer", async () => {
    const result = await verifyFirmware(image, serializeManifest(manifest), { trustedRoots: [ed.rootKey], hardwareId: "sensor-v2", minSecurityVersion: 5 });
    expect(result.strength).toBe("signed");
    expect(result.signers).toEqual([{ keyId: ed.signingKey.keyId, name: "ed25519-signer", alg: "ed25519" }]);
    expect(result.manifest.image.size).toBe(300_000);
  });

  it("refuses an image with one flipped byte", async () => {
    const copy = join(dir.path, "flipped.bin");
    const bytes = readFileSync(image);
    bytes[123_456] ^= 0x01;
    writeFileSync(copy, bytes);
    expect(await refusal(verifyFirmware(copy, manifest, { trustedRoots: [ed.rootKey] }))).toBe("FIRMWARE_DIGEST_MISMATCH");
  });

  it("refuses a truncated image and an image with bytes appended", async () => {
    const short = join(dir.path, "short.bin");
    writeFileSync(short, readFileSync(image));
    truncateSync(short, 299_999);
    expect(await refusal(verifyFirmware(short, manifest, { trustedRoots: [ed.rootKey] }))).toBe("FIRMWARE_SIZE_MISMATCH");
    const long = join(dir.path, "long.bin");
    writeFileSync(long, readFileSync(image));
    appendFileSync(long, Buffer.from([0]));
    expect(await refusal(verifyFirmware(long, manifest, { trustedRoots: [ed.rootKey] }))).toBe("FIRMWARE_SIZE_MISMATCH");
  });

  it("refuses a wrong hardware id", async () => {
    expect(await refusal(verifyFirmware(image, manifest, { trustedRoots: [ed.rootKey], hardwareId: "sensor-v3" }))).toBe("FIRMWARE_HARDWARE_MISMATCH");
  });

  it("refuses a lower security version than the persisted counter, and the counter only moves up", async () => {
    const counter = new FileSecurityCounter(join(dir.path, "counter"));
    expect(await counter.read()).toBe(0);
    await counter.advance(6);
    expect(await refusal(verifyFirmware(image, manifest, { trustedRoots: [ed.rootKey], minSecurityVersion: counter }))).toBe("FIRMWARE_ROLLBACK");
    expect(await refusal(counter.advance(4))).toBe("FIRMWARE_COUNTER_INVALID");
    expect(await counter.read()).toBe(6);
  });

  it("refuses an unknown signing key (no certificate from a pinned root)", async () => {
    const other = await signingSetup("ed25519");
    // Signed by a key certified by another root: the certificate's issuer is not pinned.
    const foreign = await signedManifestFor(image, other);
    expect(await refusal(verifyFirmware(image, foreign, { trustedRoots: [ed.rootKey] }))).toBe("FIRMWARE_KEY_UNTRUSTED");
    // Signed by an uncertified key, with our signer's certificate attached.
    const uncertified = { ...(await signedManifestFor(image, other)), certificates: [ed.certificate] };
    expect(await refusal(verifyFirmware(image, uncertified, { trustedRoots: [ed.rootKey] }))).toBe("FIRMWARE_KEY_UNTRUSTED");
  });

  it("refuses a revoked signing key, and an older revocation list", async () => {
    const list = await signRevocationList(ed.root, 2, [{ keyId: ed.signingKey.keyId, revokedAt: "2026-01-01T00:00:00Z", reason: "keyCompromise" }]);
    expect(await refusal(verifyFirmware(image, manifest, { trustedRoots: [ed.rootKey], revocations: list }))).toBe("FIRMWARE_KEY_REVOKED");
    const empty = await signRevocationList(ed.root, 1, []);
    expect(await refusal(verifyFirmware(image, manifest, { trustedRoots: [ed.rootKey], revocations: empty, minRevocationVersion: 2 }))).toBe(
      "FIRMWARE_REVOCATION_LIST_INVALID",
    );
  });

  it("refuses a manifest signed outside the signing key's validity window", async () => {
    const expired = await signingSetup("ed25519", "ed25519", { notBefore: new Date("2020-01-01T00:00:00Z"), notAfter: new Date("2021-01-01T00:00:00Z") });
    const late = await signedManifestFor(image, expired);
    expect(await refusal(verifyFirmware(image, late, { trustedRoots: [expired.rootKey] }))).toBe("FIRMWARE_KEY_EXPIRED");
  });

  it("refuses a signature taken from another manifest", async () => {
    const other = await signedManifestFor(image, ed, { version: "9.9.9" });
    const spliced = { ...manifest, signatures: other.signatures };
    expect(await refusal(verifyFirmware(image, spliced, { trustedRoots: [ed.rootKey] }))).toBe("FIRMWARE_SIGNATURE_INVALID");
  });

  it("refuses a hybrid manifest when only one of its two signatures is valid", async () => {
    const hybrid = await signingSetup("hybrid-ed25519-mldsa65");
    const good = await signedManifestFor(image, hybrid);
    const ok = await verifyFirmware(image, good, { trustedRoots: [hybrid.rootKey] });
    expect(ok.strength).toBe("signed-hybrid");
    const sig = fromBase64Url(good.signatures[0]!.sig, "sig");
    for (const [offset, component] of [
      [10, "ed25519"],
      [64 + 100, "ml-dsa-65"],
    ] as const) {
      const broken = Buffer.from(sig);
      broken[offset] ^= 0x80;
      const tampered = { ...good, signatures: [{ keyId: good.signatures[0]!.keyId, sig: toBase64Url(broken) }] };
      try {
        await verifyFirmware(image, tampered, { trustedRoots: [hybrid.rootKey] });
        expect.unreachable("a half-valid hybrid signature verified");
      } catch (error) {
        expect(isMoatError(error, "FIRMWARE_SIGNATURE_INVALID")).toBe(true);
        expect((error as { detail?: { failed?: string } }).detail?.failed).toBe(component);
      }
    }
  });

  it("refuses a manifest with an unknown critical field but accepts an unknown non-critical one", async () => {
    const critical = await resign((body) => (body.extensions = { "x-requires-secure-element": { critical: true, value: 1 } }));
    expect(await refusal(verifyFirmware(image, critical, { trustedRoots: [ed.rootKey] }))).toBe("FIRMWARE_MANIFEST_UNKNOWN_CRITICAL");
    const constraint = await resign((body) => (body.constraints = { minBatteryPercent: 30 }));
    expect(await refusal(verifyFirmware(image, constraint, { trustedRoots: [ed.rootKey] }))).toBe("FIRMWARE_MANIFEST_UNKNOWN_CRITICAL");
    const optional = await resign((body) => (body.extensions = { "x-build-host": { critical: false, value: "ci-7" } }));
    expect((await verifyFirmware(image, optional, { trustedRoots: [ed.rootKey] })).manifest.extensions).toBeDefined();
  });

  it("refuses an image target path with ..", async () => {
    const escaping = await resign((body) => ((body.image as Record<string, unknown>).path = "sensor-v2/../../etc/passwd"));
    expect(await refusal(verifyFirmware(image, escaping, { trustedRoots: [ed.rootKey] }))).toBe("FIRMWARE_PATH_INVALID");
  });

  it("refuses non-canonical payload bytes and duplicate members", async () => {
    const body = fromBase64Url(manifest.payload, "payload").toString("utf8");
    const spaced = { ...manifest, payload: toBase64Url(Buffer.from(body.replace(/^\{/, "{ "))) };
    expect(await refusal(verifyFirmware(image, spaced, { trustedRoots: [ed.rootKey] }))).toBe("FIRMWARE_MANIFEST_MALFORMED");
    const duplicated = { ...manifest, payload: toBase64Url(Buffer.from(body.replace(/^\{/, '{"vendor":"Evil",'))) };
    expect(await refusal(verifyFirmware(image, duplicated, { trustedRoots: [ed.rootKey] }))).toBe("FIRMWARE_MANIFEST_MALFORMED");
    expect(await refusal(verifyFirmware(image, "{not json", { trustedRoots: [ed.rootKey] }))).toBe("FIRMWARE_MANIFEST_MALFORMED");
  });

  it("refuses an install constraint that is not met", async () => {
    const embargoed = await resign((body) => (body.constraints = { notBefore: "2099-01-01T00:00:00Z" }));
    expect(await refusal(verifyFirmware(image, embargoed, { trustedRoots: [ed.rootKey] }))).toBe("FIRMWARE_CONSTRAINT_UNMET");
  });

  it("verifies ECDSA P-256 signing keys under a hybrid root, and round-trips pinned key files", async () => {
    const p256 = await signingSetup("ecdsa-p256", "hybrid-ed25519-mldsa65");
    const signed = await signedManifestFor(image, p256);
    const pinned = parsePublicKey(serializePublicKey(p256.rootKey));
    expect(pinned.keyId).toBe(p256.rootKey.keyId);
    expect((await verifyFirmware(image, signed, { trustedRoots: [pinned] })).signers[0]!.alg).toBe("ecdsa-p256");
  });

  it("hashes a streamed image with the declared size", async () => {
    async function* chunks() {
      const bytes = readFileSync(image);
      for (let at = 0; at < bytes.length; at += 7_000) yield bytes.subarray(at, at + 7_000);
    }
    expect((await verifyFirmware(chunks(), manifest, { trustedRoots: [ed.rootKey] })).manifest.version).toBe("1.0.0");
  });

  it("signs the exact canonical bytes of the manifest", async () => {
    const body = await buildManifest(image, { vendor: "Acme", hardwareId: "sensor-v2", version: "1.0.0", securityVersion: 1 });
    const signed = await signManifest(body, [{ signer: ed.signer, certificate: ed.certificate }]);
    expect(fromBase64Url(signed.payload, "payload").equals(documentBytes(body))).toBe(true);
  });
});

describe("legacy verifier (seed mode)", () => {
  const secret = Buffer.alloc(32, 7);
  it("accepts matching hash and HMAC but reports the result as weaker", async () => {
    const bytes = readFileSync(image);
    const result = await verifyLegacyFirmware(image, {
      trustedSha256: createHash("sha256").update(bytes).digest("hex"),
      secret,
      expectedHmac: createHmac("sha256", secret).update(bytes).digest("hex"),
    });
    expect(result.strength).toBe("legacy-weak");
    expect(result.warnings.join(" ")).toMatch(/forge/);
  });
  it("refuses a wrong HMAC", async () => {
    const bytes = readFileSync(image);
    const code = await refusal(
      verifyLegacyFirmware(image, { trustedSha256: createHash("sha256").update(bytes).digest("hex"), secret, expectedHmac: "00".repeat(32) }),
    );
    expect(code).toBe("FIRMWARE_LEGACY_MISMATCH");
  });
});
