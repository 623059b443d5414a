import type { Command } from "commander";
import type { KekStatusReport, KekUsage } from "../../keys/index.js";
import { withApp } from "../context.js";
import { printJson, printRecord, printTable, progress } from "../output.js";
import { integerIn } from "../parse.js";

function printStatus(status: KekStatusReport): void {
  process.stdout.write(`provider  ${status.provider}\n`);
  printTable(status.versions, [
    { header: "version", value: (v: KekUsage) => v.version },
    { header: "current", value: (v) => (v.current ? "yes" : "") },
    { header: "secrets", value: (v) => v.envelopes },
    { header: "id", value: (v) => v.id },
    { header: "location", value: (v) => v.location },
  ]);
  for (const u of status.unknown) process.stdout.write(`WARNING: ${u.envelopes} secrets are wrapped by KEK ${u.id} v${u.version}, which the provider does not hold (unreadable)\n`);
  if (status.legacyFormat > 0) process.stdout.write(`note: ${status.legacyFormat} secrets use envelope format 1 (readable; re-sealed by their owner, not rewrappable)\n`);
  if (status.rotation) process.stdout.write(`rotation to v${status.rotation.targetVersion} unfinished (started ${status.rotation.startedAt}); run moat keys rotate to resume\n`);
}

/** `moat keys …`: KEK versions, rotation and retirement. */
export function register(program: Command): void {
  const keys = program.command("keys").description("key-encryption keys: status, rotation, retirement");

  keys
    .command("status")
    .description("show KEK versions and how many stored secrets each still wraps")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat keys status --json\n")
    .action(async (o: { json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const status = await app.kekRotation.status();
        if (o.json) printJson(status);
        else printStatus(status);
      }),
    );

  keys
    .command("rotate")
    .description("create a new KEK version and rewrap every data key under it (safe while moat serve runs; resumes an interrupted run)")
    .option("--rewrap-only", "do not create a version: rewrap onto the current one (env provider: after adding v<N+1> to MOAT_MASTER_KEY)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExamples:\n  moat keys rotate\n  MOAT_MASTER_KEY=v1:<old>,v2:<new> moat keys rotate --rewrap-only\n")
    .action(async (o: { rewrapOnly?: boolean; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const started = Date.now();
        const report = await app.kekRotation.rotate({ createVersion: !o.rewrapOnly });
        const seconds = (Date.now() - started) / 1000;
        if (o.json) printJson({ ...report, seconds });
        else
          printRecord({
            target: `v${report.target.version} (${report.target.id})`,
            created: report.created,
            resumed: report.resumed,
            rewrapped: report.rewrapped,
            skipped: report.skipped.length,
            conflicts: report.conflicts,
            remaining: report.remaining,
            seconds: seconds.toFixed(1),
          });
        for (const s of report.skipped) progress(`skipped ${s.location}: ${s.reason}`);
        if (report.remaining > 0) process.exitCode = 1;
      }),
    );

  keys
    .command("retire")
    .description("delete KEK versions that no stored secret uses any more (never the current one)")
    .option("--version <n>", "retire only this version (refused while it still wraps secrets)", integerIn(1, 1_000_000))
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat keys retire --version 1\n")
    .action(async (o: { version?: number; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const retired = await app.kekRotation.retireUnused(o.version);
        if (o.json) printJson({ retired });
        else process.stdout.write(retired.length ? `retired KEK versions: ${retired.join(", ")}\n` : "no unused KEK version to retire\n");
      }),
    );
}
