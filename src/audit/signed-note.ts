import { createHash, createPublicKey, verify, type KeyObject } from "node:crypto";
import { MoatError } from "../errors.js";

/**
 * C2SP signed notes with Ed25519 keys (signature type 0x01): a text ending in a newline, a blank
 * line, then signature lines `— <key name> <base64(key id || signature)>`. The key id is the first
 * four bytes of SHA-256(key name || 0x0A || 0x01 || public key); a verifier key is written
 * `<name>+<8 hex digits of the key id>+<base64(0x01 || public key)>`.
 */

const ED25519 = 0x01;
const EM_DASH_PREFIX = "\u2014 ";
/** Notes are small (a checkpoint is ~150 bytes); anything far larger is not one of ours. */
const MAX_NOTE_BYTES = 64 * 1024;
const MAX_SIGNATURES = 100;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Signs with an Ed25519 key whose private half may live elsewhere (sealed in the store, in a token). */
export interface NoteSigner {
  /** The signed-note key name: no whitespace, no '+'. */
  readonly name: string;
  /** The raw 32-byte Ed25519 public key. */
  readonly publicKey: Buffer;
  /** A pure Ed25519 signature (64 bytes) over `message`. */
  sign(message: Buffer): Promise<Buffer>;
}

export interface NoteVerifierKey {
  name: string;
  keyId: Buffer;
  publicKey: Buffer;
}

function malformed(message: string): MoatError {
  return new MoatError("AUDIT_NOTE_MALFORMED", message);
}

export function assertKeyName(name: string): void {
  if (name.length === 0 || /[\s+]/u.test(name) || /[\u0000-\u001f]/.test(name)) throw malformed(`the key name ${JSON.stringify(name)} is empty or holds whitespace or '+'`);
}

/** The 4-byte key id of an Ed25519 key named `name`. */
export function noteKeyId(name: string, publicKey: Buffer): Buffer {
  return createHash("sha256")
    .update(Buffer.from(name, "utf8"))
    .update(Buffer.from([0x0a, ED25519]))
    .update(publicKey)
    .digest()
    .subarray(0, 4);
}

/** The verifier key text `<name>+<hex key id>+<base64(0x01 || public key)>`. */
export function formatVerifierKey(name: string, publicKey: Buffer): string {
  assertKeyName(name);
  if (publicKey.length !== 32) throw malformed("an Ed25519 public key has 32 bytes");
  return `${name}+${noteKeyId(name, publicKey).toString("hex")}+${Buffer.concat([Buffer.from([ED25519]), publicKey]).toString("base64")}`;
}

export function parseVerifierKey(text: string): NoteVerifierKey {
  const trimmed = text.trim();
  const first = trimmed.indexOf("+");
  const second = first < 0 ? -1 : trimmed.indexOf("+", first + 1);
  if (first <= 0 || second < 0) throw malformed("a verifier key has the form <name>+<hex key id>+<base64 key>");
  const name = trimmed.slice(0, first);
  const hexId = trimmed.slice(first + 1, second);
  const encoded = trimmed.slice(second + 1);
  assertKeyName(name);
  if (!/^[0-9a-fA-F]{8}$/.test(hexId)) throw malformed("the verifier key's id is not 8 hex digits");
  if (!BASE64.test(encoded)) throw malformed("the verifier key's key part is not base64");
  const raw = Buffer.from(encoded, "base64");
  if (raw.length !== 33 || raw[0] !== ED25519) throw malformed("the verifier key is not an Ed25519 key (type 0x01, 32 bytes)");
  const publicKey = raw.subarray(1);
  const keyId = Buffer.from(hexId, "hex");
  if (!keyId.equals(noteKeyId(name, publicKey))) throw malformed("the verifier key's id does not match its name and key");
  return { name, keyId, publicKey };
}

function ed25519PublicKey(raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") }, format: "jwk" });
}

/** Signs `text` (which must end in a newline and hold no blank line) and returns the note. */
export async function signNote(text: string, signer: NoteSigner): Promise<string> {
  assertKeyName(signer.name);
  checkText(text);
  const signature = await signer.sign(Buffer.from(text, "utf8"));
  if (signature.length !== 64) throw new MoatError("AUDIT_SIGNATURE_INVALID", "the audit key returned a signature that is not 64 bytes");
  const tagged = Buffer.concat([noteKeyId(signer.name, signer.publicKey), signature]).toString("base64");
  return `${text}\n${EM_DASH_PREFIX}${signer.name} ${tagged}\n`;
}

function checkText(text: string): void {
  if (!text.endsWith("\n")) throw malformed("a note's text must end with a newline");
  if (text.includes("\n\n")) throw malformed("a note's text must not hold a blank line");
  if (/[\u0000-\u0009\u000b-\u001f]/.test(text)) throw malformed("a note must not hold control characters other than newline");
}

export interface OpenedNote {
  text: string;
  /** The signature lines by keys other than the verifier's (kept, not checked). */
  otherSignatures: string[];
}

/**
 * Checks `note` was signed by `key` and returns its text. Malformed notes and notes with no
 * signature by this key are refused; a signature by this key that fails to verify refuses the note.
 */
export function openNote(note: string | Buffer, key: NoteVerifierKey): OpenedNote {
  const bytes = Buffer.isBuffer(note) ? note : Buffer.from(note, "utf8");
  if (bytes.length > MAX_NOTE_BYTES) throw malformed(`a signed note is at most ${MAX_NOTE_BYTES} bytes`);
  const textForm = new TextDecoder("utf-8", { fatal: false }).decode(bytes);
  if (!Buffer.from(textForm, "utf8").equals(bytes)) throw malformed("a signed note must be valid UTF-8");
  if (/[\u0000-\u0009\u000b-\u001f]/.test(textForm)) throw malformed("a signed note must not hold control characters other than newline");
  const split = textForm.lastIndexOf("\n\n");
  if (split < 0) throw malformed("a signed note has its text, a blank line, then signature lines");
  const text = textForm.slice(0, split + 1);
  const lines = textForm.slice(split + 2);
  if (!lines.endsWith("\n")) throw malformed("a signed note ends with a newline");
  const signatureLines = lines.slice(0, -1).split("\n");
  if (signatureLines.length > MAX_SIGNATURES) throw malformed(`a signed note holds at most ${MAX_SIGNATURES} signatures`);
  let verified = false;
  const otherSignatures: string[] = [];
  for (const line of signatureLines) {
    if (!line.startsWith(EM_DASH_PREFIX)) throw malformed("a signature line starts with an em dash and a space");
    const rest = line.slice(EM_DASH_PREFIX.length);
    const space = rest.lastIndexOf(" ");
    if (space <= 0) throw malformed("a signature line is '— <key name> <base64 signature>'");
    const name = rest.slice(0, space);
    const encoded = rest.slice(space + 1);
    assertKeyName(name);
    if (!BASE64.test(encoded)) throw malformed("a signature is not base64");
    const signature = Buffer.from(encoded, "base64");
    if (signature.length < 5) throw malformed("a signature is shorter than its key id");
    if (name !== key.name || !signature.subarray(0, 4).equals(key.keyId)) {
      otherSignatures.push(line);
      continue;
    }
    if (signature.length !== 68 || !verify(null, Buffer.from(text, "utf8"), ed25519PublicKey(key.publicKey), signature.subarray(4)))
      throw new MoatError("AUDIT_SIGNATURE_INVALID", `the note's signature by ${key.name} does not verify: its text was changed or it was signed by another key`);
    verified = true;
  }
  if (!verified) throw new MoatError("AUDIT_SIGNATURE_INVALID", `the note carries no signature by ${key.name}+${key.keyId.toString("hex")}`);
  return { text, otherSignatures };
}
