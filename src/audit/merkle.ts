import { createHash } from "node:crypto";

/**
 * The audit log as a Merkle tree with RFC 9162 §2.1 hashing: a leaf is SHA-256(0x00 || entry bytes),
 * an interior node SHA-256(0x01 || left || right), and a tree of n leaves splits at the largest power
 * of two below n. Only perfect subtrees are ever stored (level ℓ, index i covers leaves
 * [i·2^ℓ, (i+1)·2^ℓ)); every root and proof below is assembled from O(log n) of them, so nothing
 * re-hashes the log.
 */

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** MTH({}) = SHA-256 of the empty string. */
export const EMPTY_ROOT: Buffer = createHash("sha256").digest();

export function leafHash(entry: Uint8Array): Buffer {
  return createHash("sha256").update(LEAF_PREFIX).update(entry).digest();
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  return createHash("sha256").update(NODE_PREFIX).update(left).update(right).digest();
}

/** A stored perfect subtree: `level` ℓ, `index` i covers leaves [i·2^ℓ, (i+1)·2^ℓ). */
export interface NodeId {
  level: number;
  index: number;
}

export interface StoredNode extends NodeId {
  hash: Buffer;
}

/** Looks up a stored perfect subtree; throws when it is absent. */
export type NodeLookup = (id: NodeId) => Buffer;

export function nodeKey(id: NodeId): string {
  return `${id.level}:${id.index}`;
}

/** The largest power of two strictly below n (n ≥ 2): RFC 9162's split point k. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

function log2(n: number): number {
  return Math.round(Math.log2(n));
}

/**
 * MTH(D[start:end]) for the ranges RFC 9162's recursion visits: the left part of every split is a
 * perfect subtree aligned to its size, so it is one stored node; the right part recurses.
 */
export function rangeHash(start: number, end: number, lookup: NodeLookup): Buffer {
  const n = end - start;
  if (n === 0) return EMPTY_ROOT;
  if (isPowerOfTwo(n) && start % n === 0) return lookup({ level: log2(n), index: start / n });
  const k = splitPoint(n);
  return nodeHash(rangeHash(start, start + k, lookup), rangeHash(start + k, end, lookup));
}

/** The root of the tree of the first `size` leaves. */
export function treeRoot(size: number, lookup: NodeLookup): Buffer {
  return rangeHash(0, size, lookup);
}

/** The left siblings a leaf appended at `index` completes a parent with: one per trailing 1-bit of the index. */
export function siblingsOf(index: number): NodeId[] {
  const out: NodeId[] = [];
  for (let level = 0, i = index; i % 2 === 1; level++, i = (i - 1) / 2) out.push({ level, index: i - 1 });
  return out;
}

/** The nodes appending leaf `index` creates: the leaf itself, then each parent it completes. */
export function nodesCompletedBy(index: number, leaf: Buffer, lookup: NodeLookup): StoredNode[] {
  const created: StoredNode[] = [{ level: 0, index, hash: leaf }];
  let hash = leaf;
  for (const sibling of siblingsOf(index)) {
    hash = nodeHash(lookup(sibling), hash);
    created.push({ level: sibling.level + 1, index: sibling.index / 2, hash });
  }
  return created;
}

/** RFC 9162 §2.1.3.1 PATH(m, D[n]): the audit path of leaf m in a tree of `size` leaves. */
export function inclusionPath(index: number, size: number, lookup: NodeLookup): Buffer[] {
  const path: Buffer[] = [];
  const walk = (m: number, start: number, end: number): void => {
    const n = end - start;
    if (n <= 1) return;
    const k = splitPoint(n);
    if (m < k) {
      walk(m, start, start + k);
      path.push(rangeHash(start + k, end, lookup));
    } else {
      walk(m - k, start + k, end);
      path.push(rangeHash(start, start + k, lookup));
    }
  };
  walk(index, 0, size);
  return path;
}

/** RFC 9162 §2.1.4.1 PROOF(m, D[n]): proves the tree of `size` extends the tree of its first `oldSize` leaves. */
export function consistencyPath(oldSize: number, size: number, lookup: NodeLookup): Buffer[] {
  const path: Buffer[] = [];
  if (oldSize === 0 || oldSize >= size) return path;
  const sub = (m: number, start: number, end: number, whole: boolean): void => {
    const n = end - start;
    if (m === n) {
      if (!whole) path.push(rangeHash(start, end, lookup));
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      sub(m, start, start + k, whole);
      path.push(rangeHash(start + k, end, lookup));
    } else {
      sub(m - k, start + k, end, false);
      path.push(rangeHash(start, start + k, lookup));
    }
  };
  sub(oldSize, 0, size, true);
  return path;
}

/**
 * Runs a computation over stored nodes in two passes: the first only records which nodes it reads,
 * the second runs with them fetched in one round trip. Proofs read O(log² n) nodes at most.
 */
export async function withStoredNodes<T>(compute: (lookup: NodeLookup) => T, fetch: (ids: NodeId[]) => Promise<StoredNode[]>): Promise<T> {
  const wanted = new Map<string, NodeId>();
  const placeholder = Buffer.alloc(32);
  compute((id) => {
    wanted.set(nodeKey(id), id);
    return placeholder;
  });
  const found = new Map<string, Buffer>();
  if (wanted.size > 0) for (const node of await fetch([...wanted.values()])) found.set(nodeKey(node), node.hash);
  return compute((id) => {
    const hash = found.get(nodeKey(id));
    if (!hash) throw new MissingNodeError(id);
    return hash;
  });
}

/** A perfect subtree the computation needs is not stored (deleted, or the tree is shorter than claimed). */
export class MissingNodeError extends Error {
  constructor(readonly node: NodeId) {
    super(`Merkle node level ${node.level} index ${node.index} is not stored`);
  }
}

/** RFC 9162 §2.1.3.2: does `path` prove leaf `index` with hash `leaf` is in the tree of `size` leaves with `root`? */
export function verifyInclusion(index: number, size: number, leaf: Uint8Array, path: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leaf);
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/** RFC 9162 §2.1.4.2: does `path` prove the tree (`size`, `root`) extends the tree (`oldSize`, `oldRoot`)? */
export function verifyConsistency(oldSize: number, size: number, oldRoot: Uint8Array, root: Uint8Array, path: readonly Uint8Array[]): boolean {
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(size) || oldSize < 0 || oldSize > size) return false;
  // Every tree extends the empty one; a tree extends itself only when the roots agree.
  if (oldSize === 0) return path.length === 0 && Buffer.from(oldRoot).equals(EMPTY_ROOT);
  if (oldSize === size) return path.length === 0 && Buffer.from(oldRoot).equals(root);
  const proof = isPowerOfTwo(oldSize) ? [oldRoot, ...path] : [...path];
  if (proof.length === 0) return false;
  let fn = oldSize - 1;
  let sn = size - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Buffer = Buffer.from(proof[0]!);
  let sr: Buffer = Buffer.from(proof[0]!);
  for (const c of proof.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr.equals(oldRoot) && sr.equals(root);
}

/**
 * Builds the tree leaf by leaf in memory (verification from the entries, backfilling the stored
 * nodes). Holds one hash per level.
 */
export class MerkleBuilder {
  private readonly stack: StoredNode[] = [];
  size = 0;

  /** Adds the next leaf; returns the nodes it completes (the leaf first). */
  push(leaf: Buffer): StoredNode[] {
    const created: StoredNode[] = [{ level: 0, index: this.size, hash: leaf }];
    let top: StoredNode = created[0]!;
    while (this.stack.length > 0 && this.stack[this.stack.length - 1]!.level === top.level) {
      const left = this.stack.pop()!;
      top = { level: top.level + 1, index: left.index / 2, hash: nodeHash(left.hash, top.hash) };
      created.push(top);
    }
    this.stack.push(top);
    this.size += 1;
    return created;
  }

  root(): Buffer {
    if (this.stack.length === 0) return EMPTY_ROOT;
    let hash = this.stack[this.stack.length - 1]!.hash;
    for (let i = this.stack.length - 2; i >= 0; i--) hash = nodeHash(this.stack[i]!.hash, hash);
    return hash;
  }
}
