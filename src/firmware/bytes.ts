import { MoatError, type ErrorCode } from "../errors.js";

/** base64url without padding (RFC 4648 §5), the encoding of every binary value in firmware documents. */
export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

/** Strict base64url decode: refuses padding, other alphabets and non-canonical trailing bits. */
export function fromBase64Url(text: unknown, what: string, code: ErrorCode = "FIRMWARE_MANIFEST_MALFORMED"): Buffer {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1)
    throw new MoatError(code, `${what} is not base64url`);
  const bytes = Buffer.from(text, "base64url");
  if (bytes.toString("base64url") !== text) throw new MoatError(code, `${what} is not canonical base64url`);
  return bytes;
}

/** Lower-case hex of exactly `length` bytes, or a coded error. */
export function fromHex(text: unknown, length: number, what: string, code: ErrorCode = "FIRMWARE_MANIFEST_MALFORMED"): Buffer {
  if (typeof text !== "string" || text.length !== length * 2 || !/^[0-9a-f]*$/.test(text))
    throw new MoatError(code, `${what} must be ${length} bytes of lower-case hex`);
  return Buffer.from(text, "hex");
}
