import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { withApp } from "../context.js";

/** `moat ca …`: Moat's certificate authorities. */
export function register(program: Command): void {
  const ca = program.command("ca").description("Moat's certificate authorities");
  ca.command("chain")
    .description("print the CA chain as PEM: issuing CA, then root")
    .option("--out <file>", "write to a file instead of stdout")
    .addHelpText("after", "\nExample:\n  moat ca chain > chain.pem\n")
    .action(async (options: { out?: string }, command: Command) =>
      withApp(command, async (app) => {
        const pem = await app.ca.chainPem();
        if (options.out) writeFileSync(options.out, pem);
        else process.stdout.write(pem);
      }),
    );
}
