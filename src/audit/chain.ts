import { createHash } from "node:crypto";
import { canonicalJson } from "../crypto/index.js";
import { leafHash } from "./merkle.js";

/** The hash that stands before the first entry. */
export const GENESIS_HASH = "0".repeat(64);

/** The fields an entry's hash covers, in a fixed order. */
export interface ChainedFields {
  seq: number;
  time: string;
  type: string;
  severity: string;
  actor: string;
  subject: string;
  data: Record<string, unknown>;
  prevHash: string;
}

const ENTRY_TAG = Buffer.from("moat-audit-v1\0", "latin1");

/**
 * The bytes that stand for an entry, in the chain and as its Merkle leaf: the ASCII tag
 * `moat-audit-v1`, a zero byte, then the canonical JSON (RFC 8785 style: sorted keys, no
 * whitespace) of `[seq, time, type, severity, actor, subject, data, prevHash]` in UTF-8.
 */
export function entryBytes(fields: ChainedFields): Buffer {
  const body = canonicalJson([fields.seq, fields.time, fields.type, fields.severity, fields.actor, fields.subject, fields.data, fields.prevHash]);
  return Buffer.concat([ENTRY_TAG, Buffer.from(body, "utf8")]);
}

/** The chain hash: SHA-256 over the entry bytes, the previous hash included. */
export function entryHash(fields: ChainedFields): string {
  return createHash("sha256").update(entryBytes(fields)).digest("hex");
}

/** The entry's RFC 9162 leaf hash: SHA-256(0x00 || entry bytes). */
export function entryLeafHash(fields: ChainedFields): Buffer {
  return leafHash(entryBytes(fields));
}

export interface ChainEntry extends ChainedFields {
  hash: string;
}

export type ChainProblem =
  | { kind: "hash-mismatch"; seq: number }
  | { kind: "broken-link"; seq: number }
  | { kind: "gap"; seq: number; expected: number }
  | { kind: "head-mismatch"; seq: number };

/**
 * Checks entries in order. Returns the first problem: an edited entry (its hash no longer matches),
 * a reordered or replaced one (its prevHash does not link), or a deleted one (a gap in seq).
 */
export class ChainVerifier {
  private expectedSeq = 1;
  private prevHash = GENESIS_HASH;
  count = 0;

  check(entry: ChainEntry): ChainProblem | null {
    if (entry.seq !== this.expectedSeq) return { kind: "gap", seq: entry.seq, expected: this.expectedSeq };
    if (entry.prevHash !== this.prevHash) return { kind: "broken-link", seq: entry.seq };
    if (entryHash(entry) !== entry.hash) return { kind: "hash-mismatch", seq: entry.seq };
    this.expectedSeq += 1;
    this.prevHash = entry.hash;
    this.count += 1;
    return null;
  }

  /** The head row must name the last entry; a truncated tail shows up here. */
  finish(head: { seq: number; hash: string }): ChainProblem | null {
    if (head.seq !== this.expectedSeq - 1 || head.hash !== this.prevHash) return { kind: "head-mismatch", seq: this.expectedSeq - 1 };
    return null;
  }
}

export function describeProblem(problem: ChainProblem): string {
  switch (problem.kind) {
    case "hash-mismatch":
      return `entry ${problem.seq} was modified: its hash does not match its contents`;
    case "broken-link":
      return `entry ${problem.seq} does not link to the entry before it (reordered, replaced or its predecessor was modified)`;
    case "gap":
      return `entry ${problem.expected} is missing (deleted); the next entry found is ${problem.seq}`;
    case "head-mismatch":
      return `the chain ends at entry ${problem.seq} but the head records another end (entries after ${problem.seq} were deleted, or the head was edited)`;
  }
}
