import { MoatError } from "../errors.js";
import { entryLeafHash, type ChainEntry } from "./chain.js";
import { openCheckpoint, type Checkpoint } from "./checkpoint.js";
import { verifyInclusion } from "./merkle.js";
import type { NoteVerifierKey } from "./signed-note.js";

/**
 * `moat audit prove --json`: everything needed to check offline that entry `seq` is in the log the
 * signed checkpoint describes. Hashes are lower-case hex; `index` is the RFC 9162 leaf index (seq − 1).
 */
export interface InclusionProof {
  seq: number;
  index: number;
  treeSize: number;
  leafHash: string;
  path: string[];
  rootHash: string;
  /** The C2SP tlog-checkpoint signed note the proof is relative to. */
  checkpoint: string;
  /** The entry itself, so the leaf hash can be recomputed from its fields. */
  entry: ChainEntry;
}

const HEX32 = /^[0-9a-f]{64}$/;

function malformed(message: string): MoatError {
  return new MoatError("AUDIT_NOTE_MALFORMED", `inclusion proof: ${message}`);
}

/** Reads a proof from untrusted JSON text, checking every field's type and shape. */
export function parseInclusionProof(text: string): InclusionProof {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed("the file is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw malformed("the file is not a JSON object");
  const v = value as Record<string, unknown>;
  const int = (name: string, min: number) => {
    const n = v[name];
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < min) throw malformed(`${name} must be an integer ≥ ${min}`);
    return n;
  };
  const hex = (name: string, x: unknown) => {
    if (typeof x !== "string" || !HEX32.test(x)) throw malformed(`${name} must be 64 lower-case hex digits`);
    return x;
  };
  if (!Array.isArray(v.path) || v.path.length > 64) throw malformed("path must be an array of at most 64 hashes");
  if (typeof v.checkpoint !== "string") throw malformed("checkpoint must be the signed note text");
  const e = v.entry as Record<string, unknown> | undefined;
  if (typeof e !== "object" || e === null || Array.isArray(e)) throw malformed("entry must be an object");
  for (const field of ["time", "type", "severity", "actor", "subject", "prevHash", "hash"]) if (typeof e[field] !== "string") throw malformed(`entry.${field} must be a string`);
  if (typeof e.seq !== "number" || typeof e.data !== "object" || e.data === null || Array.isArray(e.data)) throw malformed("entry.seq must be a number and entry.data an object");
  return {
    seq: int("seq", 1),
    index: int("index", 0),
    treeSize: int("treeSize", 1),
    leafHash: hex("leafHash", v.leafHash),
    path: v.path.map((h, i) => hex(`path[${i}]`, h)),
    rootHash: hex("rootHash", v.rootHash),
    checkpoint: v.checkpoint,
    entry: e as unknown as ChainEntry,
  };
}

/**
 * Checks a proof offline: the checkpoint's signature by `key`, that the proof speaks of that
 * checkpoint's size and root, that the leaf hash is the entry's, and the RFC 9162 audit path.
 */
export function verifyInclusionProof(proof: InclusionProof, key: NoteVerifierKey): Checkpoint {
  const checkpoint = openCheckpoint(proof.checkpoint, key);
  const invalid = (message: string) => new MoatError("AUDIT_PROOF_INVALID", message);
  if (checkpoint.size !== proof.treeSize) throw invalid(`the proof is for tree size ${proof.treeSize}, the checkpoint for ${checkpoint.size}`);
  if (checkpoint.rootHash.toString("hex") !== proof.rootHash) throw invalid("the proof's rootHash is not the checkpoint's root");
  if (proof.index !== proof.seq - 1 || proof.entry.seq !== proof.seq) throw invalid("index, seq and entry.seq do not agree (index = seq − 1)");
  if (entryLeafHash(proof.entry).toString("hex") !== proof.leafHash) throw invalid(`entry ${proof.seq}'s fields do not hash to the proof's leafHash`);
  const path = proof.path.map((h) => Buffer.from(h, "hex"));
  if (!verifyInclusion(proof.index, proof.treeSize, Buffer.from(proof.leafHash, "hex"), path, checkpoint.rootHash))
    throw invalid(`the audit path does not lead from entry ${proof.seq} to the checkpoint's root`);
  return checkpoint;
}
