import type { Command } from "commander";
import type { OperatorToken } from "../../identity/index.js";
import { cliActor, withApp } from "../context.js";
import { printJson, printRecord, printTable } from "../output.js";
import { durationOption } from "../parse.js";

/** `moat token …`: operator API tokens. */
export function register(program: Command): void {
  const token = program.command("token").description("operator API tokens");

  token
    .command("create <name>")
    .description("create an API token; the token is printed once and never stored")
    .requiredOption("--role <role>", "operator role: admin, operator or auditor")
    .option("--expires <duration>", "lifetime, e.g. 12h, 30d", durationOption)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat token create ci-pipeline --role operator --expires 30d\n")
    .action(async (name: string, o: { role: string; expires?: number; json?: boolean }, command: Command) =>
      withApp(command, ["policy"], async (app) => {
        const { token: secret, record } = await app.tokens.create({ name, role: o.role, ...(o.expires ? { expiresInSeconds: o.expires / 1000 } : {}) }, cliActor());
        if (o.json) printJson({ token: secret, record });
        else {
          process.stdout.write(`${secret}\n`);
          process.stderr.write(`token '${record.name}' (${record.role}) created; it is shown only this once\n`);
        }
      }),
    );

  token
    .command("list")
    .description("list API tokens (never their secrets)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat token list --json\n")
    .action(async (o: { json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const tokens = await app.tokens.list();
        if (o.json) printJson(tokens);
        else
          printTable(tokens, [
            { header: "name", value: (t: OperatorToken) => t.name },
            { header: "role", value: (t) => t.role },
            { header: "created", value: (t) => t.createdAt },
            { header: "expires", value: (t) => t.expiresAt },
            { header: "revoked", value: (t) => t.revokedAt },
            { header: "last used", value: (t) => t.lastUsedAt },
          ]);
      }),
    );

  token
    .command("revoke <name>")
    .description("revoke an API token at once")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat token revoke ci-pipeline\n")
    .action(async (name: string, o: { json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const record = await app.tokens.revoke(name, cliActor());
        if (o.json) printJson(record);
        else printRecord({ ...record });
      }),
    );
}
