import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { checkpointFromFile, openCheckpoint, parseInclusionProof, parseVerifierKey, verifyInclusionProof, type SecurityEvent, type VerifyResult } from "../../audit/index.js";
import { MoatError } from "../../errors.js";
import { writeFileAtomic } from "../../lib/atomic-file.js";
import { withApp } from "../context.js";
import { printJson, printTable, progress } from "../output.js";
import { integerIn, parsePageLimit } from "../parse.js";

function readInput(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (cause) {
    throw new MoatError("VALIDATION_FAILED", `cannot read the ${what} ${path}: ${(cause as NodeJS.ErrnoException).code ?? "error"}`, { cause });
  }
}

/** Public material (checkpoints, verifier keys): readable by all, written atomically. */
async function writeOutput(path: string | undefined, text: string): Promise<void> {
  if (path) await writeFileAtomic(path, text, { mode: 0o644 });
  else process.stdout.write(text);
}

function printVerify(result: VerifyResult, json: boolean | undefined): void {
  if (json) printJson(result);
  else if (result.ok) {
    const against = result.checkpoint ? `; extends checkpoint ${result.checkpoint.size} (consistency proof of ${result.consistencyProof?.length ?? 0} hashes verified)` : "";
    process.stdout.write(`audit log intact: ${result.entries} entries, root ${result.rootHash}${against}\n`);
  } else for (const problem of result.problems) process.stdout.write(`AUDIT LOG TAMPERED [${problem.code}]${problem.seq !== undefined ? ` at entry ${problem.seq}` : ""}: ${problem.message}\n`);
  if (!result.ok) process.exitCode = 1;
}

/** `moat audit …`: the tamper-evident security event log, its checkpoints and proofs. */
export function register(program: Command): void {
  const audit = program.command("audit").description("the tamper-evident security event log, its signed checkpoints and proofs");

  audit
    .command("list")
    .description("list security events, newest first")
    .option("--type <type>", "only this event type, e.g. device.status_changed")
    .option("--subject <subject>", "only events about this subject")
    .option("--limit <n>", "how many, newest first (max 1000)", parsePageLimit, 50)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat audit list --type auth.failed --limit 20\n")
    .action(async (o: { type?: string; subject?: string; limit: number; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const events = await app.audit.list(o);
        if (o.json) printJson(events);
        else
          printTable(events, [
            { header: "seq", value: (e: SecurityEvent) => e.seq },
            { header: "time", value: (e) => e.time },
            { header: "type", value: (e) => e.type },
            { header: "severity", value: (e) => e.severity },
            { header: "actor", value: (e) => e.actor },
            { header: "subject", value: (e) => e.subject },
            { header: "data", value: (e) => e.data },
          ]);
      }),
    );

  audit
    .command("verify")
    .description("recompute the chain and Merkle tree; with --checkpoint, prove the log extends that exported checkpoint (exit 1 on any tampering)")
    .option("--checkpoint <file>", "a checkpoint written by `moat audit checkpoint --out` (or the witness file: its last line is used)")
    .option("--key <file>", "verifier key from `moat audit key export` (default: the installation's key in the database)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExamples:\n  moat audit verify && echo intact\n  moat audit verify --checkpoint /mnt/worm/moat-checkpoint.txt --key audit.vkey\n")
    .action(async (o: { checkpoint?: string; key?: string; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const key = parseVerifierKey(o.key ? readInput(o.key, "verifier key") : await app.auditKeys.verifierKey());
        // Without a file, the latest checkpoint in the store is the reference (useful, but an attacker with the database can delete it).
        const checkpoint = o.checkpoint
          ? openCheckpoint(checkpointFromFile(readInput(o.checkpoint, "checkpoint")), key, app.auditCheckpoints.origin)
          : await app.auditCheckpoints.latest(key).then((latest) => latest?.checkpoint ?? null);
        printVerify(await app.audit.verify({ checkpoint, onProgress: (n) => progress(`verified ${n} entries…`) }), o.json);
      }),
    );

  audit
    .command("checkpoint")
    .description("sign a checkpoint of the log now (C2SP tlog-checkpoint), store it, copy it to the witnesses, and write it out")
    .option("--out <file>", "write the signed checkpoint here (default: stdout)")
    .option("--json", "print JSON (size, rootHash, createdAt, checkpoint)")
    .addHelpText("after", "\nExample:\n  moat audit checkpoint --out /mnt/worm/moat-checkpoint.txt\n")
    .action(async (o: { out?: string; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const record = await app.auditCheckpoints.create();
        await writeOutput(o.out, record.note);
        if (o.json) printJson({ size: record.size, rootHash: record.rootHash.toString("hex"), createdAt: record.createdAt, checkpoint: record.note });
        else if (o.out) process.stdout.write(`checkpoint of ${record.size} entries written to ${o.out}\n`);
      }),
    );

  audit
    .command("prove")
    .description("print an RFC 9162 inclusion proof of one entry relative to a signed checkpoint")
    .requiredOption("--seq <n>", "the entry's sequence number", integerIn(0, Number.MAX_SAFE_INTEGER))
    .option("--out <file>", "write the proof here (default: stdout)")
    .option("--json", "print JSON (the proof is always JSON)")
    .addHelpText("after", "\nExample:\n  moat audit prove --seq 42 --json > entry-42.proof.json\n")
    .action(async (o: { seq: number; out?: string }, command: Command) =>
      withApp(command, [], async (app) => {
        const proof = await app.auditCheckpoints.prove(o.seq);
        await writeOutput(o.out, `${JSON.stringify(proof, null, 2)}\n`);
      }),
    );

  audit
    .command("verify-proof")
    .description("check an inclusion proof offline (no database): the checkpoint's signature, the entry's leaf hash and the audit path")
    .argument("<file>", "a proof written by `moat audit prove --json`")
    .requiredOption("--key <file>", "verifier key from `moat audit key export`")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat audit verify-proof entry-42.proof.json --key audit.vkey\n")
    .action(async (file: string, o: { key: string; json?: boolean }) => {
      const proof = parseInclusionProof(readInput(file, "proof"));
      const checkpoint = verifyInclusionProof(proof, parseVerifierKey(readInput(o.key, "verifier key")));
      const result = { ok: true, seq: proof.seq, treeSize: checkpoint.size, origin: checkpoint.origin, rootHash: checkpoint.rootHash.toString("hex") };
      if (o.json) printJson(result);
      else process.stdout.write(`entry ${proof.seq} is in ${checkpoint.origin} at tree size ${checkpoint.size} (signature and audit path verified)\n`);
    });

  const key = audit.command("key").description("the Ed25519 audit key that signs checkpoints");
  key
    .command("export")
    .description("write the audit key's public half in signed-note verifier form (<name>+<key id>+<key>)")
    .option("--out <file>", "write it here (default: stdout)")
    .option("--json", "print JSON (verifierKey, location)")
    .addHelpText("after", "\nExample:\n  moat audit key export --out audit.vkey\n")
    .action(async (o: { out?: string; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const verifierKey = await app.auditKeys.verifierKey();
        await writeOutput(o.out, `${verifierKey}\n`);
        if (o.json) printJson({ verifierKey, location: await app.auditKeys.location() });
      }),
    );
}
