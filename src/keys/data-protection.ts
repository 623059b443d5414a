import { MoatError } from "../errors.js";
import type { Envelope } from "./envelope.js";

/** Largest record or file `DataProtection` seals in one envelope. */
export const MAX_PROTECTED_BYTES = 256 * 1024 * 1024;

const CONTEXT = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

function checkContext(context: string): string {
  if (!CONTEXT.test(context)) throw new MoatError("VALIDATION_FAILED", `context ${JSON.stringify(context)} must match ${CONTEXT.source}`);
  return context;
}

function checkSize(length: number, what: string): void {
  if (length > MAX_PROTECTED_BYTES) throw new MoatError("VALIDATION_FAILED", `${what} is ${length} bytes; the limit is ${MAX_PROTECTED_BYTES}`);
}

/**
 * Encryption at rest for applications (the seed's DataEncryption, with envelope encryption under
 * the configured KEK provider instead of a Fernet key in a file). Every ciphertext is bound to a
 * context (purpose and row, e.g. `orders:4711`): opened under another context it fails.
 */
export class DataProtection {
  constructor(private readonly envelope: Envelope) {}

  /** Seals a JSON-serialisable record; AAD `data-record:<context>`. */
  async encryptRecord(record: unknown, context = "default"): Promise<Buffer> {
    let json: string | undefined;
    try {
      json = JSON.stringify(record);
    } catch (error) {
      throw new MoatError("VALIDATION_FAILED", "the record cannot be serialised as JSON", { cause: error });
    }
    if (json === undefined) throw new MoatError("VALIDATION_FAILED", "the record is not JSON-serialisable");
    const bytes = Buffer.from(json, "utf8");
    checkSize(bytes.length, "the record");
    return this.envelope.seal(bytes, `data-record:${checkContext(context)}`);
  }

  /** Opens a record sealed by `encryptRecord` under the same context. */
  async decryptRecord(sealed: Uint8Array, context = "default"): Promise<unknown> {
    const plaintext = await this.envelope.open(sealed, `data-record:${checkContext(context)}`);
    try {
      return JSON.parse(plaintext.toString("utf8")) as unknown;
    } catch (error) {
      throw new MoatError("DATA_RECORD_MALFORMED", "the decrypted bytes are not a JSON record (was this sealed with encryptFile?)", { cause: error });
    } finally {
      plaintext.fill(0);
    }
  }

  /** Seals file contents; AAD `data-file:<context>`. */
  async encryptFile(contents: Uint8Array, context = "default"): Promise<Buffer> {
    checkSize(contents.length, "the file");
    return this.envelope.seal(contents, `data-file:${checkContext(context)}`);
  }

  async decryptFile(sealed: Uint8Array, context = "default"): Promise<Buffer> {
    return this.envelope.open(sealed, `data-file:${checkContext(context)}`);
  }

  /**
   * Rewraps a sealed record or file onto the current KEK version without decrypting it. Files kept
   * outside the database are invisible to `moat keys rotate`: rewrap them before an old version is
   * retired. Returns null when it is already current.
   */
  async rewrap(sealed: Uint8Array): Promise<Buffer | null> {
    return this.envelope.rewrap(sealed);
  }
}
