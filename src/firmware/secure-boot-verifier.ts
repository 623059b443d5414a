import { timingSafeEqual } from "node:crypto";
import { MoatError } from "../errors.js";
import { digestImage, type ImageSource } from "./image-digest.js";
import { verifyKeyCertificate, type KeyCertificate } from "./key-certificate.js";
import { parseManifest, type FirmwareManifest } from "./manifest.js";
import type { FirmwarePublicKey } from "./public-key.js";
import { verifyRevocationList, type RevocationList } from "./revocation-list.js";
import type { SecurityCounter } from "./security-counter.js";
import { checkSignatureBy } from "./signed-document.js";

/** What a device (or `moat firmware verify`) pins and knows about itself. */
export interface SecureBootPolicy {
  /** Root firmware keys the device trusts; signing keys must be certified by one of them. */
  trustedRoots: readonly FirmwarePublicKey[];
  /** The device's hardware id; when given, the manifest must name exactly this one. */
  hardwareId?: string;
  /** The anti-rollback floor: a number, or the device's persisted counter. */
  minSecurityVersion?: number | SecurityCounter;
  /** The latest root-signed revocation list the device holds, and the version floor it has accepted. */
  revocations?: unknown;
  minRevocationVersion?: number;
  /** Verification time (defaults to now); only used to refuse manifests signed in the future and for constraints. */
  now?: Date;
  /** Allowed clock skew for "signed in the future" (default 5 minutes). */
  clockSkewMs?: number;
}

export interface SecureBootResult {
  /** "signed" for classical signatures, "signed-hybrid" when every signer used Ed25519+ML-DSA-65. */
  strength: "signed" | "signed-hybrid";
  manifest: FirmwareManifest;
  signers: Array<{ keyId: string; name: string; alg: string }>;
  /** The exact signed bytes of the manifest (for records and TUF custom fields). */
  manifestBytes: Buffer;
  warnings: string[];
}

/**
 * The secure-boot check. Cheap checks come first so a wrong manifest costs no hashing:
 * 1. the manifest parses, is canonical, has no unknown critical field and a safe image path;
 * 2. every signature verifies with a signing key certified by a pinned root (RFC 9019 §4.2),
 *    the key was inside its certificate's window when it signed, and it is not revoked;
 * 3. hardware id, anti-rollback floor and install constraints hold;
 * 4. the image, hashed in one streaming pass with constant memory, has the declared size and SHA-256.
 * Any failure throws a `MoatError` whose code names the reason.
 */
export async function verifyFirmware(image: ImageSource, manifestInput: string | Uint8Array | object, policy: SecureBootPolicy): Promise<SecureBootResult> {
  const { signed, bytes, manifest } = parseManifest(manifestInput);
  const now = policy.now ?? new Date();
  const skew = policy.clockSkewMs ?? 5 * 60_000;
  const createdAt = new Date(manifest.createdAt);
  if (createdAt.getTime() > now.getTime() + skew)
    throw new MoatError("FIRMWARE_KEY_EXPIRED", `the manifest claims to be signed at ${manifest.createdAt}, in the future`);

  const revocations: RevocationList | undefined =
    policy.revocations === undefined ? undefined : verifyRevocationList(policy.revocations, policy.trustedRoots, policy.minRevocationVersion);
  const certified = new Map<string, KeyCertificate>();
  for (const certificate of signed.certificates) {
    const cert = verifyKeyCertificate(certificate, policy.trustedRoots);
    certified.set(cert.subject.keyId, cert);
  }

  const signers: SecureBootResult["signers"] = [];
  for (const signature of signed.signatures) {
    const cert = certified.get(signature.keyId);
    if (!cert) throw new MoatError("FIRMWARE_KEY_UNTRUSTED", `signing key ${signature.keyId.slice(0, 16)}… has no certificate from a pinned root`);
    const revoked = revocations?.revoked.find((entry) => entry.keyId === signature.keyId);
    if (revoked) throw new MoatError("FIRMWARE_KEY_REVOKED", `signing key "${cert.name}" was revoked at ${revoked.revokedAt} (${revoked.reason})`);
    // The window is checked at signing time, not boot time: an image signed while its key was valid
    // must keep booting after the certificate lapses. A leaked key is handled by revocation.
    if (createdAt < cert.notBefore || createdAt > cert.notAfter)
      throw new MoatError("FIRMWARE_KEY_EXPIRED", `signing key "${cert.name}" is valid ${cert.notBefore.toISOString()} – ${cert.notAfter.toISOString()}, the manifest was signed at ${manifest.createdAt}`);
    const check = checkSignatureBy(signed, bytes, cert.subject);
    if (!check?.valid)
      throw new MoatError("FIRMWARE_SIGNATURE_INVALID", `the ${cert.subject.alg} signature by "${cert.name}" does not verify${check?.failed ? ` (${check.failed} component)` : ""}`, {
        detail: { keyId: cert.subject.keyId, failed: check?.failed },
      });
    signers.push({ keyId: cert.subject.keyId, name: cert.name, alg: cert.subject.alg });
  }

  if (policy.hardwareId !== undefined && !sameText(policy.hardwareId, manifest.hardwareId))
    throw new MoatError("FIRMWARE_HARDWARE_MISMATCH", `the manifest is for hardware "${manifest.hardwareId}", this device is "${policy.hardwareId}"`);
  const floor = typeof policy.minSecurityVersion === "object" ? await policy.minSecurityVersion.read() : (policy.minSecurityVersion ?? 0);
  if (manifest.securityVersion < floor)
    throw new MoatError("FIRMWARE_ROLLBACK", `security version ${manifest.securityVersion} is below the device's counter ${floor}: downgrade refused`, {
      detail: { securityVersion: manifest.securityVersion, counter: floor },
    });
  checkConstraints(manifest, now, floor);

  const digest = await digestImage(image, { limit: manifest.image.size });
  if (digest.size !== manifest.image.size)
    throw new MoatError("FIRMWARE_SIZE_MISMATCH", `the image is ${digest.size > manifest.image.size ? "longer" : `${digest.size} bytes`}, the manifest says ${manifest.image.size} bytes`);
  if (!timingSafeEqual(digest.sha256, Buffer.from(manifest.image.sha256, "hex")))
    throw new MoatError("FIRMWARE_DIGEST_MISMATCH", "the image's SHA-256 does not match the manifest");

  return {
    strength: signers.every((s) => s.alg === "hybrid-ed25519-mldsa65") ? "signed-hybrid" : "signed",
    manifest,
    signers,
    manifestBytes: bytes,
    warnings: [],
  };
}

function checkConstraints(manifest: FirmwareManifest, now: Date, currentSecurityVersion: number): void {
  const constraints = manifest.constraints;
  if (!constraints) return;
  if (constraints.notBefore && now < new Date(constraints.notBefore))
    throw new MoatError("FIRMWARE_CONSTRAINT_UNMET", `the manifest may not be installed before ${constraints.notBefore}`);
  if (constraints.notAfter && now > new Date(constraints.notAfter))
    throw new MoatError("FIRMWARE_CONSTRAINT_UNMET", `the manifest may not be installed after ${constraints.notAfter}`);
  if (constraints.minCurrentSecurityVersion !== undefined && currentSecurityVersion < constraints.minCurrentSecurityVersion)
    throw new MoatError("FIRMWARE_CONSTRAINT_UNMET", `install security version ${constraints.minCurrentSecurityVersion} first (device is at ${currentSecurityVersion})`);
}

function sameText(a: string, b: string): boolean {
  return a.length === b.length && a === b;
}
