#!/usr/bin/env node
import { CommanderError } from "commander";
import { MoatError } from "../errors.js";
import { buildProgram } from "./program.js";

/** Exit codes: 0 ok, 1 failure, 2 usage error. */
async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
    // Servers have closed by now; don't let a stray handle keep a finished command alive.
    process.exit(process.exitCode ?? 0);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help") process.exit(0);
      process.exit(2);
    }
    if (error instanceof MoatError) {
      process.stderr.write(`error ${error.code}: ${error.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`error: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  }
}

await main();
