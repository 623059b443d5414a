import type { ErrorCode } from "../errors.js";
import { ChainVerifier, describeProblem, entryLeafHash } from "./chain.js";
import type { Checkpoint } from "./checkpoint.js";
import { consistencyPath, EMPTY_ROOT, MerkleBuilder, MissingNodeError, nodeKey, treeRoot, verifyConsistency, withStoredNodes, type StoredNode } from "./merkle.js";
import type { AuditPort } from "./ports.js";

export interface VerifyProblem {
  code: ErrorCode;
  message: string;
  /** The first entry concerned, when one can be named. */
  seq?: number;
}

export interface VerifyResult {
  ok: boolean;
  entries: number;
  /** Root of the tree recomputed from the entries, hex. */
  rootHash: string;
  /** The checkpoint checked against, when there was one. */
  checkpoint?: { size: number; rootHash: string };
  /** RFC 9162 consistency proof from the checkpoint to the current tree, hex (from the stored subtrees). */
  consistencyProof?: string[];
  /** Every problem found, the strongest evidence first. */
  problems: VerifyProblem[];
  /** The first problem's code, message and entry (kept for callers that show one). */
  code?: ErrorCode;
  problem?: string;
  firstBadSeq?: number;
}

const PAGE = 5000;

/**
 * Recomputes the log from its entries (chain links and Merkle leaves), and checks, in this order:
 * the signed checkpoint (the log must still hold its first `size` entries unchanged, proven with a
 * consistency proof from the stored subtrees), the hash chain, the head row, and that the stored
 * subtrees agree with the entries. Nothing here throws for tampering: every finding is a coded problem.
 */
export async function verifyLog(port: AuditPort, checkpoint: Checkpoint | null, onProgress?: (checked: number) => void): Promise<VerifyResult> {
  const chain = new ChainVerifier();
  const builder = new MerkleBuilder();
  let chainProblem: VerifyProblem | null = null;
  let rootAtCheckpoint: Buffer | null = checkpoint?.size === 0 ? EMPTY_ROOT : null;
  const created: StoredNode[] = [];
  let treeProblem: VerifyProblem | null = null;
  for (let from = 0; ; ) {
    const page = await port.scan(from, PAGE);
    for (const entry of page) {
      if (!chainProblem) {
        const problem = chain.check(entry);
        if (problem) chainProblem = { code: "AUDIT_CHAIN_BROKEN", message: describeProblem(problem), seq: problem.seq };
      }
      created.push(...builder.push(entryLeafHash(entry)));
      if (checkpoint && builder.size === checkpoint.size) rootAtCheckpoint = builder.root();
    }
    // Every stored subtree must be the one the entries give: proofs are built from them.
    if (!treeProblem) treeProblem = await compareStored(port, created);
    created.length = 0;
    onProgress?.(builder.size);
    if (page.length < PAGE) break;
    from = page[page.length - 1]!.seq;
  }
  const size = builder.size;
  const root = builder.root();
  const problems: VerifyProblem[] = [];
  let consistencyProof: Buffer[] | undefined;
  const stored = (ids: Parameters<AuditPort["nodes"]>[0]) => port.nodes(ids);

  if (checkpoint) {
    if (size < checkpoint.size) {
      problems.push({ code: "AUDIT_LOG_TRUNCATED", message: `the log holds ${size} entries, but the checkpoint signed ${checkpoint.size}: entries were deleted`, seq: size + 1 });
    } else if (!rootAtCheckpoint?.equals(checkpoint.rootHash)) {
      problems.push({
        code: "AUDIT_LOG_REWRITTEN",
        message: `the first ${checkpoint.size} entries no longer hash to the checkpoint's root: entries up to ${checkpoint.size} were edited, replaced, reordered or deleted`,
      });
    } else {
      try {
        consistencyProof = await withStoredNodes((lookup) => consistencyPath(checkpoint.size, size, lookup), stored);
        if (!verifyConsistency(checkpoint.size, size, checkpoint.rootHash, root, consistencyProof))
          problems.push({ code: "AUDIT_TREE_MISMATCH", message: "the consistency proof built from the stored subtrees does not lead from the checkpoint to the entries' root" });
      } catch (error) {
        if (!(error instanceof MissingNodeError)) throw error;
        problems.push({ code: "AUDIT_TREE_MISMATCH", message: `the consistency proof needs a stored subtree that is missing (${error.message})` });
      }
    }
  }
  if (chainProblem) problems.push(chainProblem);
  if (treeProblem && !problems.some((p) => p.code === "AUDIT_TREE_MISMATCH")) problems.push(treeProblem);
  const head = await port.head();
  if (!head) problems.push({ code: "AUDIT_HEAD_MISSING", message: "the audit_head row is missing: the database was tampered with" });
  else if (!chainProblem) {
    const problem = chain.finish(head);
    if (problem) problems.push({ code: "AUDIT_CHAIN_BROKEN", message: describeProblem(problem), seq: problem.seq });
  }
  if (!problems.some((p) => p.code === "AUDIT_TREE_MISMATCH")) {
    try {
      const storedRoot = await withStoredNodes((lookup) => treeRoot(size, lookup), stored);
      if (!storedRoot.equals(root)) problems.push({ code: "AUDIT_TREE_MISMATCH", message: "the stored subtree hashes give another root than the entries" });
    } catch (error) {
      if (!(error instanceof MissingNodeError)) throw error;
      problems.push({ code: "AUDIT_TREE_MISMATCH", message: `a stored subtree is missing (${error.message})` });
    }
  }
  const first = problems[0];
  return {
    ok: problems.length === 0,
    entries: size,
    rootHash: root.toString("hex"),
    ...(checkpoint ? { checkpoint: { size: checkpoint.size, rootHash: checkpoint.rootHash.toString("hex") } } : {}),
    ...(consistencyProof ? { consistencyProof: consistencyProof.map((h) => h.toString("hex")) } : {}),
    problems,
    ...(first ? { code: first.code, problem: first.message, ...(first.seq !== undefined ? { firstBadSeq: first.seq } : {}) } : {}),
  };
}

/** The first node among `expected` that is missing from the store or stored with another hash. */
async function compareStored(port: AuditPort, expected: readonly StoredNode[]): Promise<VerifyProblem | null> {
  const stored = new Map((await port.nodes(expected)).map((n) => [nodeKey(n), n.hash]));
  for (const node of expected) {
    const hash = stored.get(nodeKey(node));
    if (hash?.equals(node.hash)) continue;
    const firstSeq = node.index * 2 ** node.level + 1;
    return {
      code: "AUDIT_TREE_MISMATCH",
      message: `the stored subtree over entries ${firstSeq}…${firstSeq + 2 ** node.level - 1} is ${hash ? "not the hash of those entries" : "missing"}`,
      seq: firstSeq,
    };
  }
  return null;
}
