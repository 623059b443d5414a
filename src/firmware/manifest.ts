import { MoatError } from "../errors.js";
import { fromHex } from "./bytes.js";
import { parseTime, requireCount, requireString } from "./fields.js";
import { openDocument, signDocument, type DocumentSigner, type SignedDocument } from "./signed-document.js";
import { assertSafeTargetPath } from "./target-path.js";

export const MANIFEST_TYPE = "moat-firmware-manifest/1";

/** Optional conditions the device checks before installing. */
export interface InstallConstraints {
  /** Do not install before this time (staged embargo). */
  notBefore?: string;
  /** Do not install after this time (a build that must not linger). */
  notAfter?: string;
  /** The device must already run at least this security version (a required stepping stone). */
  minCurrentSecurityVersion?: number;
}

/** An extension: unknown ones are ignored unless `critical`, as with X.509 extensions (RFC 5280 §4.2). */
export interface ManifestExtension {
  critical: boolean;
  value: unknown;
}

/** The signed content of a firmware manifest (SUIT-like fields, RFC 9019 §3 information model). */
export interface FirmwareManifest {
  type: typeof MANIFEST_TYPE;
  vendor: string;
  hardwareId: string;
  /** Semantic version, for people and for ordering releases. */
  version: string;
  /** Monotonic integer for anti-rollback: a device refuses anything below its counter. */
  securityVersion: number;
  image: { path: string; size: number; sha256: string };
  createdAt: string;
  description?: string;
  constraints?: InstallConstraints;
  extensions?: Record<string, ManifestExtension>;
}

/** The manifest file: the signed document plus the signing keys' certificates. */
export interface SignedManifest extends SignedDocument {
  certificates: SignedDocument[];
}

/** Extensions this verifier implements; a critical extension not listed here fails verification. */
export const KNOWN_EXTENSIONS: ReadonlySet<string> = new Set(["release-notes-url"]);

// semver.org §2, §9, §10 (no leading zeros in numeric identifiers).
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;
const HARDWARE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const TOP_LEVEL = new Set(["type", "vendor", "hardwareId", "version", "securityVersion", "image", "createdAt", "description", "constraints", "extensions"]);

/** Signs a manifest body and attaches the signers' key certificates. */
export async function signManifest(manifest: FirmwareManifest, signers: Array<{ signer: DocumentSigner; certificate: SignedDocument }>): Promise<SignedManifest> {
  validateManifest(manifest as unknown as Record<string, unknown>);
  const signed = await signDocument(manifest as unknown as Record<string, unknown>, signers.map((s) => s.signer));
  return { ...signed, certificates: signers.map((s) => s.certificate) };
}

/** Serialises a signed manifest for a file (the payload inside stays the exact signed bytes). */
export function serializeManifest(manifest: SignedManifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/**
 * Parses a manifest file's outer structure and its payload's fields. Signatures are NOT checked
 * here; the verifier does that. Unknown top-level fields are malformed; unknown critical
 * extensions fail with `FIRMWARE_MANIFEST_UNKNOWN_CRITICAL`.
 */
export function parseManifest(input: string | Uint8Array | object): { signed: SignedManifest; bytes: Buffer; manifest: FirmwareManifest } {
  let value: unknown = input;
  if (typeof input === "string" || input instanceof Uint8Array) {
    try {
      value = JSON.parse(typeof input === "string" ? input : Buffer.from(input).toString("utf8"));
    } catch (cause) {
      throw new MoatError("FIRMWARE_MANIFEST_MALFORMED", "the manifest file is not valid JSON", { cause });
    }
  }
  const { document, bytes, payload } = openDocument(value, "manifest", ["certificates"]);
  const certificates = (value as Record<string, unknown>).certificates;
  if (!Array.isArray(certificates)) throw new MoatError("FIRMWARE_MANIFEST_MALFORMED", "manifest certificates must be an array");
  if (document.signatures.length === 0) throw new MoatError("FIRMWARE_MANIFEST_MALFORMED", "the manifest carries no signature");
  const manifest = validateManifest(payload);
  return { signed: { ...document, certificates: certificates as SignedDocument[] }, bytes, manifest };
}

function validateManifest(payload: Record<string, unknown>): FirmwareManifest {
  const fail = (why: string) => new MoatError("FIRMWARE_MANIFEST_MALFORMED", `manifest: ${why}`);
  if (payload.type !== MANIFEST_TYPE) throw fail(`type must be ${MANIFEST_TYPE} (got ${JSON.stringify(payload.type)})`);
  for (const field of Object.keys(payload)) if (!TOP_LEVEL.has(field)) throw fail(`unknown field "${field}" (put additions under "extensions")`);
  requireString(payload.vendor, "manifest vendor");
  if (typeof payload.hardwareId !== "string" || !HARDWARE_ID.test(payload.hardwareId)) throw fail("hardwareId must match [A-Za-z0-9][A-Za-z0-9._:-]{0,127}");
  if (typeof payload.version !== "string" || payload.version.length > 64 || !SEMVER.test(payload.version)) throw fail("version must be a semantic version (semver.org)");
  requireCount(payload.securityVersion, "manifest securityVersion");
  const image = payload.image as Record<string, unknown> | undefined;
  if (typeof image !== "object" || image === null || Array.isArray(image)) throw fail("image must be an object");
  for (const field of Object.keys(image)) if (!["path", "size", "sha256"].includes(field)) throw fail(`image has an unknown field "${field}"`);
  assertSafeTargetPath(image.path, "image path");
  requireCount(image.size, "image size");
  fromHex(image.sha256, 32, "image sha256");
  parseTime(payload.createdAt, "manifest createdAt");
  if (payload.description !== undefined) requireString(payload.description, "manifest description", "FIRMWARE_MANIFEST_MALFORMED", 4096);
  if (payload.constraints !== undefined) validateConstraints(payload.constraints, fail);
  if (payload.extensions !== undefined) validateExtensions(payload.extensions, fail);
  return payload as unknown as FirmwareManifest;
}

function validateConstraints(value: unknown, fail: (why: string) => MoatError): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw fail("constraints must be an object");
  const record = value as Record<string, unknown>;
  for (const [field, item] of Object.entries(record)) {
    if (field === "notBefore" || field === "notAfter") parseTime(item, `constraints.${field}`);
    else if (field === "minCurrentSecurityVersion") requireCount(item, "constraints.minCurrentSecurityVersion");
    // Constraints restrict installation, so one the device does not understand must not be skipped.
    else throw new MoatError("FIRMWARE_MANIFEST_UNKNOWN_CRITICAL", `manifest constraint "${field}" is not known to this verifier`);
  }
}

function validateExtensions(value: unknown, fail: (why: string) => MoatError): void {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw fail("extensions must be an object");
  for (const [name, extension] of Object.entries(value as Record<string, unknown>)) {
    const record = extension as Record<string, unknown> | null;
    if (typeof record !== "object" || record === null || typeof record.critical !== "boolean" || !("value" in record) || Object.keys(record).length !== 2)
      throw fail(`extension "${name}" must be {critical, value}`);
    if (record.critical && !KNOWN_EXTENSIONS.has(name))
      throw new MoatError("FIRMWARE_MANIFEST_UNKNOWN_CRITICAL", `manifest extension "${name}" is critical and unknown to this verifier`);
  }
}
