import { cpSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, type CliResult } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";

/** A coded one-line refusal, never a stack trace. */
function expectCodedFailure(result: CliResult, code: string): void {
  expect(result.code).toBe(1);
  expect(`${result.stdout}${result.stderr}`).toContain(code);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

describe("moat audit checkpoints, proofs and tampering (CLI, SQLite)", () => {
  const dir = tempDir();
  const dataDir = join(dir.path, "data");
  const witness = join(dir.path, "witness.jsonl");
  const env = { MOAT_AUDIT_WITNESS_FILE: witness };
  const moatIn = (data: string, ...args: string[]) => runCli(["--data-dir", data, ...args], { env });
  const moat = (...args: string[]) => moatIn(dataDir, ...args);
  const checkpointFile = join(dir.path, "checkpoint.txt");
  const keyFile = join(dir.path, "audit.vkey");
  let copies = 0;

  /** A copy of the installation as it stood when the checkpoint was exported, for one tampering each. */
  function copyInstallation(): string {
    const copy = join(dir.path, `copy-${++copies}`);
    cpSync(dataDir, copy, { recursive: true });
    return copy;
  }
  function tamper(data: string, ...statements: string[]): void {
    const db = new Database(join(data, "moat.db"));
    for (const statement of statements) db.exec(statement);
    db.close();
  }

  beforeAll(async () => {
    expect((await moat("init", "--trust-domain", "plant.example", "--json")).code).toBe(0);
    // Real processes appending at once: the head row serialises them into one tree.
    const adds = await Promise.all(Array.from({ length: 6 }, (_, i) => moat("device", "add", `dev-${i}`)));
    expect(adds.map((r) => r.code)).toEqual([0, 0, 0, 0, 0, 0]);
    expect((await moat("audit", "key", "export", "--out", keyFile)).code).toBe(0);
    const cp = await moat("audit", "checkpoint", "--out", checkpointFile, "--json");
    expect(cp.code).toBe(0);
    expect(JSON.parse(cp.stdout).size).toBeGreaterThanOrEqual(7);
    for (let i = 6; i < 9; i++) expect((await moat("device", "add", `dev-${i}`)).code).toBe(0);
  }, 120_000);
  afterAll(() => dir.cleanup());

  it("exports the key and the checkpoint in signed-note form, and copies the checkpoint to the witness file", () => {
    expect(readFileSync(keyFile, "utf8")).toMatch(/^plant\.example\/moat-audit\+[0-9a-f]{8}\+[A-Za-z0-9+/]{43}[A-Za-z0-9+/=]\n$/);
    const note = readFileSync(checkpointFile, "utf8");
    expect(note).toMatch(/^plant\.example\/moat-audit\n\d+\n[A-Za-z0-9+/]{43}=\n\n\u2014 plant\.example\/moat-audit [A-Za-z0-9+/]{91}=\n$/);
    const lines = readFileSync(witness, "utf8").trim().split("\n");
    expect(JSON.parse(lines.at(-1)!).checkpoint).toBe(note);
    expect(statSync(witness).mode & 0o777).toBe(0o600);
  });

  it("verifies the log against the exported checkpoint (and the witness file) with a consistency proof", async () => {
    const ok = await moat("audit", "verify", "--checkpoint", checkpointFile, "--key", keyFile, "--json");
    expect(ok.code).toBe(0);
    const result = JSON.parse(ok.stdout);
    expect(result).toMatchObject({ ok: true, problems: [] });
    expect(result.entries).toBeGreaterThan(result.checkpoint.size);
    expect(result.consistencyProof.length).toBeGreaterThan(0);
    expect((await moat("audit", "verify", "--checkpoint", witness)).stdout).toMatch(/^audit log intact: \d+ entries, root [0-9a-f]{64}; extends checkpoint/);
  });

  it("prints an inclusion proof that verify-proof checks without a database", async () => {
    const proved = await moat("audit", "prove", "--seq", "2", "--json");
    expect(proved.code).toBe(0);
    const proof = JSON.parse(proved.stdout);
    expect(proof).toMatchObject({ seq: 2, index: 1 });
    expect(Object.keys(proof)).toEqual(expect.arrayContaining(["index", "treeSize", "leafHash", "path", "rootHash", "checkpoint"]));
    const proofFile = join(dir.path, "proof.json");
    writeFileSync(proofFile, proved.stdout);
    // No data dir at all: the proof, the key and nothing else.
    const offline = await runCli(["--data-dir", join(dir.path, "nowhere"), "audit", "verify-proof", proofFile, "--key", keyFile, "--json"]);
    expect(offline.code).toBe(0);
    expect(JSON.parse(offline.stdout)).toMatchObject({ ok: true, seq: 2, origin: "plant.example/moat-audit" });
    writeFileSync(proofFile, proved.stdout.replace(/"actor": "[^"]*"/, '"actor": "mallory"'));
    expectCodedFailure(await runCli(["audit", "verify-proof", proofFile, "--key", keyFile]), "AUDIT_PROOF_INVALID");
    writeFileSync(proofFile, "{not json");
    expectCodedFailure(await runCli(["audit", "verify-proof", proofFile, "--key", keyFile]), "AUDIT_NOTE_MALFORMED");
  });

  it("detects a deleted tail with the head fixed", async () => {
    const copy = copyInstallation();
    tamper(copy, "delete from audit_events where seq > 3", "update audit_head set seq = 3, hash = (select hash from audit_events where seq = 3)", "delete from audit_tree where idx * (1 << level) + (1 << level) > 3");
    expectCodedFailure(await moatIn(copy, "audit", "verify", "--checkpoint", checkpointFile, "--key", keyFile), "AUDIT_LOG_TRUNCATED");
  });

  it("detects an edited entry (the recomputed-hashes case is in audit-log.test.ts)", async () => {
    const copy = copyInstallation();
    tamper(copy, "update audit_events set actor = 'mallory' where seq = 2");
    const result = await moatIn(copy, "audit", "verify", "--checkpoint", checkpointFile, "--key", keyFile, "--json");
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout).problems.map((p: { code: string }) => p.code)).toEqual(expect.arrayContaining(["AUDIT_LOG_REWRITTEN", "AUDIT_CHAIN_BROKEN"]));
  });

  it("detects everything deleted and the head reset", async () => {
    const copy = copyInstallation();
    tamper(copy, "delete from audit_events", "delete from audit_tree", "delete from audit_checkpoints", `update audit_head set seq = 0, hash = '${"0".repeat(64)}'`);
    expectCodedFailure(await moatIn(copy, "audit", "verify", "--checkpoint", checkpointFile, "--key", keyFile), "AUDIT_LOG_TRUNCATED");
  });

  it("reports a deleted head row with a code, and a command that would append refuses without a stack", async () => {
    const copy = copyInstallation();
    tamper(copy, "delete from audit_head");
    expectCodedFailure(await moatIn(copy, "audit", "verify", "--checkpoint", checkpointFile, "--key", keyFile), "AUDIT_HEAD_MISSING");
    expectCodedFailure(await moatIn(copy, "device", "add", "after-tamper"), "AUDIT_HEAD_MISSING");
    expectCodedFailure(await moatIn(copy, "audit", "checkpoint"), "AUDIT_HEAD_MISSING");
  });

  it("refuses a checkpoint file that was edited or does not parse", async () => {
    const edited = join(dir.path, "edited.txt");
    writeFileSync(edited, readFileSync(checkpointFile, "utf8").replace(/\n(\d+)\n/, (_, n) => `\n${Number(n) - 1}\n`));
    expectCodedFailure(await moat("audit", "verify", "--checkpoint", edited, "--key", keyFile), "AUDIT_SIGNATURE_INVALID");
    writeFileSync(edited, "garbage");
    expectCodedFailure(await moat("audit", "verify", "--checkpoint", edited, "--key", keyFile), "AUDIT_NOTE_MALFORMED");
  });
});
