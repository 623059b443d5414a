#!/usr/bin/env node
import { CommanderError } from "commander";
import { MoatError } from "../errors.js";
import { buildProgram } from "./program.js";

/**
 * Exit codes: 0 ok, 1 failure, 2 usage error. The code is set, never forced with process.exit: stdout
 * to a pipe is written asynchronously, and exiting early would cut it at the pipe buffer. Every
 * command closes what it opened, so the process ends on its own once the output has drained.
 */
async function main(): Promise<number> {
  try {
    const program = await buildProgram(process.argv.slice(2));
    await program.parseAsync(process.argv);
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help") return 0;
      return 2;
    }
    if (error instanceof MoatError) {
      process.stderr.write(`error ${error.code}: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`error: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}

// A reader that goes away early (`moat … | head`) leaves the rest of the output nowhere to go; that is
// not the command's failure, and the command still finishes its work (a revocation is not cut short).
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE" && error.code !== "ERR_STREAM_DESTROYED") throw error;
});

process.exitCode = await main();
