import { readFileSync, statSync } from "node:fs";
import type { Command } from "commander";
import { MAX_PROTECTED_BYTES } from "../../keys/index.js";
import { MoatError } from "../../errors.js";
import { writeFileAtomicSync } from "../../lib/atomic-file.js";
import { withApp } from "../context.js";
import { printJson } from "../output.js";

/** Reads an input file with a size limit (clear error instead of an out-of-memory crash). */
export function readInputFile(path: string, limit = MAX_PROTECTED_BYTES): Buffer {
  let size: number;
  try {
    size = statSync(path).size;
  } catch (error) {
    throw new MoatError("VALIDATION_FAILED", `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
  if (size > limit) throw new MoatError("VALIDATION_FAILED", `${path} is ${size} bytes; the limit is ${limit}`);
  return readFileSync(path);
}

/**
 * Writes an output file atomically with mode 0600: an interrupted run leaves no half-written file.
 * Refuses to replace an existing file unless `force`.
 */
export function writeOutputFile(path: string, contents: Uint8Array, force = false): void {
  try {
    writeFileAtomicSync(path, contents, { replace: force });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") throw new MoatError("VALIDATION_FAILED", `${path} exists; pass --force to replace it`);
    throw error;
  }
}

interface FileOptions {
  in: string;
  out: string;
  context: string;
  force?: boolean;
  json?: boolean;
}

/** `moat data …`: encryption at rest for application files with the configured KEK provider. */
export function register(program: Command): void {
  const data = program.command("data").description("encrypt and decrypt application data with Moat's envelope encryption");

  data
    .command("encrypt")
    .description("seal a file (AES-256-GCM under a fresh data key wrapped by the KEK); the output is mode 0600")
    .requiredOption("--in <file>", "plaintext input")
    .requiredOption("--out <file>", "encrypted output")
    .option("--context <name>", "purpose/row the ciphertext is bound to; decrypt needs the same", "default")
    .option("--force", "replace an existing output file")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat data encrypt --in readings.csv --out readings.csv.enc --context site-7/readings\n")
    .action(async (o: FileOptions, command: Command) =>
      withApp(command, [], async (app) => {
        const sealed = await app.dataProtection.encryptFile(readInputFile(o.in), o.context);
        writeOutputFile(o.out, sealed, o.force);
        if (o.json) printJson({ in: o.in, out: o.out, context: o.context, bytes: sealed.length, provider: app.envelope.providerKind });
        else process.stderr.write(`sealed ${o.in} → ${o.out} (${sealed.length} bytes, context ${o.context}, KEK provider ${app.envelope.providerKind})\n`);
      }),
    );

  data
    .command("decrypt")
    .description("open a file sealed by moat data encrypt; the output is mode 0600")
    .requiredOption("--in <file>", "encrypted input")
    .requiredOption("--out <file>", "plaintext output")
    .option("--context <name>", "the context it was sealed with", "default")
    .option("--force", "replace an existing output file")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat data decrypt --in readings.csv.enc --out readings.csv --context site-7/readings\n")
    .action(async (o: FileOptions, command: Command) =>
      withApp(command, [], async (app) => {
        const plaintext = await app.dataProtection.decryptFile(readInputFile(o.in, MAX_PROTECTED_BYTES + 4096), o.context);
        try {
          writeOutputFile(o.out, plaintext, o.force);
        } finally {
          plaintext.fill(0);
        }
        if (o.json) printJson({ in: o.in, out: o.out, context: o.context });
        else process.stderr.write(`opened ${o.in} → ${o.out}\n`);
      }),
    );

  data
    .command("rewrap <files...>")
    .description("rewrap sealed files onto the current KEK version in place (no decryption); do this before moat keys retire")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat data rewrap backups/*.enc\n")
    .action(async (files: string[], o: { json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const results: Array<{ file: string; rewrapped: boolean }> = [];
        for (const file of files) {
          const next = await app.dataProtection.rewrap(readInputFile(file, MAX_PROTECTED_BYTES + 4096));
          if (next) writeOutputFile(file, next, true);
          results.push({ file, rewrapped: next !== null });
          if (!o.json) process.stderr.write(`${file}: ${next ? "rewrapped" : "already current"}\n`);
        }
        if (o.json) printJson(results);
      }),
    );
}
