import { basename } from "node:path";
import { digestImage, type ImageSource } from "./image-digest.js";
import { MANIFEST_TYPE, type FirmwareManifest, type InstallConstraints, type ManifestExtension } from "./manifest.js";
import { assertSafeTargetPath } from "./target-path.js";

export interface ManifestFacts {
  vendor: string;
  hardwareId: string;
  version: string;
  securityVersion: number;
  /** Target path of the image in the TUF repository; defaults to `<hardwareId>/<version>/<file name>`. */
  imagePath?: string;
  description?: string;
  constraints?: InstallConstraints;
  extensions?: Record<string, ManifestExtension>;
  now?: Date;
}

/** Default TUF target path of an image: `<hardwareId>/<version>/<name>`. */
export function defaultImageTarget(hardwareId: string, version: string, name: string): string {
  return assertSafeTargetPath(`${hardwareId}/${version}/${name}`);
}

/** Describes an image (size and SHA-256 in one streaming pass) as an unsigned manifest. */
export async function buildManifest(image: ImageSource, facts: ManifestFacts): Promise<FirmwareManifest> {
  const digest = await digestImage(image);
  const name = typeof image === "string" ? basename(image) : "image.bin";
  return {
    type: MANIFEST_TYPE,
    vendor: facts.vendor,
    hardwareId: facts.hardwareId,
    version: facts.version,
    securityVersion: facts.securityVersion,
    image: { path: facts.imagePath ?? defaultImageTarget(facts.hardwareId, facts.version, name), size: digest.size, sha256: digest.sha256.toString("hex") },
    // Whole seconds: the signing time is compared against certificate windows, sub-second noise helps no one.
    createdAt: (facts.now ?? new Date()).toISOString().replace(/\.\d{3}Z$/, "Z"),
    ...(facts.description ? { description: facts.description } : {}),
    ...(facts.constraints ? { constraints: facts.constraints } : {}),
    ...(facts.extensions ? { extensions: facts.extensions } : {}),
  };
}
