import { timingSafeEqual } from "node:crypto";
import { MoatError } from "../errors.js";
import { fromHex } from "./bytes.js";
import { digestImage, type ImageSource } from "./image-digest.js";

export interface LegacyCheck {
  /** Hex SHA-256 the device was provisioned with. */
  trustedSha256: string;
  /** The shared HMAC secret and the expected HMAC-SHA256 (hex) of the image. */
  secret: Uint8Array;
  expectedHmac: string;
}

export interface LegacyResult {
  strength: "legacy-weak";
  warnings: string[];
}

/** Why legacy mode is reported as weaker than signed manifests. */
export const LEGACY_WARNINGS: readonly string[] = Object.freeze([
  "shared-secret HMAC: anyone holding the secret (every device of the fleet) can forge a valid image",
  "no anti-rollback: an older image with its old hash and HMAC still verifies",
  "no key rotation or revocation: changing the secret means reprovisioning every device",
  "no hardware binding: the image is not tied to a device class",
]);

/**
 * The seed guide's SecureBootVerifier (trusted SHA-256 plus HMAC with a shared secret), kept for
 * devices that cannot yet verify signatures. It reads the image once (the seed read it twice and
 * held it all in memory) and compares both values in constant time. Always reported as weaker.
 */
export async function verifyLegacyFirmware(image: ImageSource, check: LegacyCheck): Promise<LegacyResult> {
  const trusted = fromHex(check.trustedSha256, 32, "trusted SHA-256", "FIRMWARE_LEGACY_MISMATCH");
  const expected = fromHex(check.expectedHmac, 32, "expected HMAC", "FIRMWARE_LEGACY_MISMATCH");
  if (check.secret.length < 16) throw new MoatError("FIRMWARE_LEGACY_MISMATCH", "the legacy HMAC secret must be at least 16 bytes");
  const digest = await digestImage(image, { hmacKey: check.secret });
  // Both comparisons always run, so the time taken does not reveal which one failed.
  const hashOk = timingSafeEqual(digest.sha256, trusted);
  const macOk = timingSafeEqual(digest.hmacSha256!, expected);
  if (!hashOk || !macOk) throw new MoatError("FIRMWARE_LEGACY_MISMATCH", `legacy check failed: ${hashOk ? "HMAC" : "SHA-256"} does not match`);
  return { strength: "legacy-weak", warnings: [...LEGACY_WARNINGS] };
}
