import { MoatError } from "../errors.js";
import { openNote, signNote, type NoteSigner, type NoteVerifierKey } from "./signed-note.js";

/**
 * C2SP tlog-checkpoint: the signed note whose text is the log's origin, its size in decimal and its
 * root hash in base64, one per line (optional extension lines follow; Moat writes none).
 */
export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Buffer;
}

/** The origin line of an installation's audit log. */
export function auditOrigin(trustDomain: string): string {
  return `${trustDomain}/moat-audit`;
}

function malformed(message: string): MoatError {
  return new MoatError("AUDIT_NOTE_MALFORMED", message);
}

export function checkpointText(checkpoint: Checkpoint): string {
  if (checkpoint.rootHash.length !== 32) throw malformed("a checkpoint's root hash has 32 bytes");
  return `${checkpoint.origin}\n${checkpoint.size}\n${checkpoint.rootHash.toString("base64")}\n`;
}

export function parseCheckpointText(text: string): Checkpoint {
  const lines = text.split("\n");
  // The text ends in a newline, so the last element is empty; origin, size and root come first.
  if (lines.length < 4 || lines.at(-1) !== "") throw malformed("a checkpoint has an origin, a size and a root hash line");
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (origin.length === 0) throw malformed("a checkpoint's origin line is empty");
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) throw malformed(`a checkpoint's size ${JSON.stringify(sizeText)} is not a decimal number`);
  if (!/^[A-Za-z0-9+/]{43}=$/.test(rootText)) throw malformed("a checkpoint's root hash is not 32 bytes of base64");
  return { origin, size: Number(sizeText), rootHash: Buffer.from(rootText, "base64") };
}

export async function signCheckpoint(checkpoint: Checkpoint, signer: NoteSigner): Promise<string> {
  return signNote(checkpointText(checkpoint), signer);
}

/** Verifies the note's signature by `key`, then parses its text; `origin`, when given, must match. */
export function openCheckpoint(note: string | Buffer, key: NoteVerifierKey, origin?: string): Checkpoint {
  const checkpoint = parseCheckpointText(openNote(note, key).text);
  if (origin !== undefined && checkpoint.origin !== origin)
    throw new MoatError("AUDIT_CHECKPOINT_FOREIGN", `the checkpoint is for log ${JSON.stringify(checkpoint.origin)}, not ${JSON.stringify(origin)}`);
  return checkpoint;
}
