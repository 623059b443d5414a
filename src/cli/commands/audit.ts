import type { Command } from "commander";
import type { SecurityEvent } from "../../audit/index.js";
import { withApp } from "../context.js";
import { printJson, printTable, progress } from "../output.js";
import { parseInteger } from "../parse.js";

/** `moat audit …`: the tamper-evident security event log. */
export function register(program: Command): void {
  const audit = program.command("audit").description("the tamper-evident security event log");

  audit
    .command("list")
    .description("list security events, newest first")
    .option("--type <type>", "only this event type, e.g. device.status_changed")
    .option("--subject <subject>", "only events about this subject")
    .option("--limit <n>", "how many (max 1000)", parseInteger, 50)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat audit list --type auth.failed --limit 20\n")
    .action(async (o: { type?: string; subject?: string; limit: number; json?: boolean }, command: Command) =>
      withApp(command, async (app) => {
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
    .description("check the hash chain; exits 1 naming the first edited, deleted or reordered entry")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat audit verify && echo intact\n")
    .action(async (o: { json?: boolean }, command: Command) =>
      withApp(command, async (app) => {
        const result = await app.audit.verify({ onProgress: (n) => progress(`verified ${n} entries…`) });
        if (o.json) printJson(result);
        else if (result.ok) process.stdout.write(`audit chain intact: ${result.entries} entries\n`);
        else process.stdout.write(`AUDIT CHAIN BROKEN at entry ${result.firstBadSeq}: ${result.problem}\n`);
        if (!result.ok) process.exitCode = 1;
      }),
    );
}
