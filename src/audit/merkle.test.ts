import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  consistencyPath,
  EMPTY_ROOT,
  inclusionPath,
  leafHash,
  MerkleBuilder,
  nodeKey,
  nodesCompletedBy,
  treeRoot,
  verifyConsistency,
  verifyInclusion,
  withStoredNodes,
  type NodeLookup,
  type StoredNode,
} from "./merkle.js";

/*
 * A second implementation written straight from RFC 9162 §2.1 over a plain array of leaf hashes
 * (MTH, PATH and PROOF as defined there), so the stored-node code is checked against the text of
 * the RFC rather than against itself.
 */
const sha = (...parts: Buffer[]) => createHash("sha256").update(Buffer.concat(parts)).digest();
const rfcLeaf = (data: Buffer) => sha(Buffer.from([0]), data);
const k = (n: number) => 2 ** Math.ceil(Math.log2(n) - 1);
function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return sha();
  if (d.length === 1) return d[0]!;
  const split = k(d.length);
  return sha(Buffer.from([1]), mth(d.slice(0, split)), mth(d.slice(split)));
}
function rfcPath(m: number, d: Buffer[]): Buffer[] {
  if (d.length <= 1) return [];
  const split = k(d.length);
  return m < split ? [...rfcPath(m, d.slice(0, split)), mth(d.slice(split))] : [...rfcPath(m - split, d.slice(split)), mth(d.slice(0, split))];
}
function rfcSubproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [mth(d)];
  const split = k(d.length);
  return m <= split ? [...rfcSubproof(m, d.slice(0, split), b), mth(d.slice(split))] : [...rfcSubproof(m - split, d.slice(split), false), mth(d.slice(0, split))];
}

/** Published Certificate Transparency test leaves and the roots of their first 1..8 leaves. */
const CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"].map((h) => Buffer.from(h, "hex"));
const CT_ROOTS = [
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/** Appends leaves the way the store does: only nodes created by `nodesCompletedBy` are kept. */
function storeOf(leaves: Buffer[]): { nodes: Map<string, Buffer>; lookup: NodeLookup } {
  const nodes = new Map<string, Buffer>();
  const lookup: NodeLookup = (id) => {
    const hash = nodes.get(nodeKey(id));
    if (!hash) throw new Error(`missing ${nodeKey(id)}`);
    return hash;
  };
  leaves.forEach((leaf, index) => {
    for (const node of nodesCompletedBy(index, leaf, lookup)) nodes.set(nodeKey(node), node.hash);
  });
  return { nodes, lookup };
}

const leavesOf = (n: number) => Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`entry ${i}`)));

describe("Merkle tree (RFC 9162 hashing)", () => {
  it("gives the published Certificate Transparency roots", () => {
    expect(EMPTY_ROOT.toString("hex")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const { lookup } = storeOf(CT_LEAVES.map(leafHash));
    for (let n = 1; n <= 8; n++) expect(treeRoot(n, lookup).toString("hex")).toBe(CT_ROOTS[n - 1]);
    expect(treeRoot(0, lookup)).toEqual(EMPTY_ROOT);
  });

  it("gives the published inclusion proof of leaf 0 in the 8-leaf tree", () => {
    const { lookup } = storeOf(CT_LEAVES.map(leafHash));
    expect(inclusionPath(0, 8, lookup).map((h) => h.toString("hex"))).toEqual([
      "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ]);
  });

  it("stores about two nodes per leaf and agrees with the RFC's definitions for every size up to 40", () => {
    const leaves = leavesOf(40);
    expect(leafHash(Buffer.from("x"))).toEqual(rfcLeaf(Buffer.from("x")));
    const { nodes, lookup } = storeOf(leaves);
    expect(nodes.size).toBeLessThan(2 * leaves.length);
    for (let n = 0; n <= 40; n++) {
      expect(treeRoot(n, lookup)).toEqual(mth(leaves.slice(0, n)));
      for (let m = 0; m < n; m++) expect(inclusionPath(m, n, lookup)).toEqual(rfcPath(m, leaves.slice(0, n)));
      for (let m = 1; m < n; m++) expect(consistencyPath(m, n, lookup)).toEqual(rfcSubproof(m, leaves.slice(0, n), true));
    }
  });

  it("verifies every inclusion and consistency proof, and refuses each altered one", () => {
    const leaves = leavesOf(40);
    const { lookup } = storeOf(leaves);
    for (let n = 1; n <= 40; n++) {
      const root = treeRoot(n, lookup);
      for (let m = 0; m < n; m++) {
        const path = inclusionPath(m, n, lookup);
        expect(verifyInclusion(m, n, leaves[m]!, path, root)).toBe(true);
        expect(verifyInclusion(m, n, leaves[(m + 1) % 40]!, path, root)).toBe(false);
        expect(verifyInclusion(m, n, leaves[m]!, path, EMPTY_ROOT)).toBe(false);
        if (path.length > 0) expect(verifyInclusion(m, n, leaves[m]!, path.slice(1), root)).toBe(false);
        if (path.length > 1) expect(verifyInclusion(m, n, leaves[m]!, [...path].reverse(), root)).toBe(false);
      }
      for (let m = 0; m <= n; m++) {
        const path = consistencyPath(m, n, lookup);
        const oldRoot = treeRoot(m, lookup);
        expect(verifyConsistency(m, n, oldRoot, root, path)).toBe(true);
        if (m > 0 && m < n) {
          const other = mth([...leaves.slice(0, m - 1), leafHash(Buffer.from("forged"))]);
          expect(verifyConsistency(m, n, other, root, path)).toBe(false);
          expect(verifyConsistency(m, n, oldRoot, root, path.slice(1))).toBe(false);
          const flipped = path.map((h, i) => (i === path.length - 1 ? Buffer.from(h.map((b, j) => (j === 0 ? b ^ 1 : b))) : h));
          expect(verifyConsistency(m, n, oldRoot, root, flipped)).toBe(false);
        }
      }
    }
  });

  it("builds in memory what the store holds", () => {
    const leaves = leavesOf(33);
    const builder = new MerkleBuilder();
    const built: StoredNode[] = [];
    for (const leaf of leaves) built.push(...builder.push(leaf));
    const { nodes, lookup } = storeOf(leaves);
    expect(builder.root()).toEqual(treeRoot(33, lookup));
    expect(new Map(built.map((n) => [nodeKey(n), n.hash]))).toEqual(nodes);
  });

  it("fetches the nodes a proof needs in one call, and names a missing one", async () => {
    const leaves = leavesOf(21);
    const { nodes, lookup } = storeOf(leaves);
    let calls = 0;
    const fetch = async (ids: { level: number; index: number }[]) => {
      calls += 1;
      return ids.flatMap((id) => (nodes.has(nodeKey(id)) ? [{ ...id, hash: nodes.get(nodeKey(id))! }] : []));
    };
    const path = await withStoredNodes((l) => inclusionPath(5, 21, l), fetch);
    expect(calls).toBe(1);
    expect(path).toEqual(inclusionPath(5, 21, lookup));
    nodes.delete("0:20");
    await expect(withStoredNodes((l) => treeRoot(21, l), fetch)).rejects.toThrow(/level 0 index 20/);
  });
});
