import { Option, type Command } from "commander";
import { MoatError } from "../../errors.js";
import { CHECKS, SEVERITIES, type Finding, type PostureRun } from "../../posture/index.js";
import { cliActor, withApp } from "../context.js";
import { printJson, printTable } from "../output.js";
import { integerIn, isoTimeOption, parsePageLimit } from "../parse.js";

function resourceText(finding: Finding): string {
  return finding.resources.map((r) => `${r.kind}:${r.id}`).join(" ");
}

function printRun(run: PostureRun): void {
  printTable(run.checks, [
    { header: "check", value: (c) => c.check },
    { header: "status", value: (c) => c.status },
    { header: "findings", value: (c) => c.findings },
    { header: "suppressed", value: (c) => c.suppressed || "" },
    { header: "note", value: (c) => c.reason ?? "" },
  ]);
  const open = run.findings.filter((f) => !f.suppressed);
  if (open.length > 0) {
    process.stdout.write("\n");
    printTable(open.slice(0, 200), [
      { header: "severity", value: (f) => f.severity },
      { header: "check", value: (f) => f.check },
      { header: "resources", value: resourceText },
    ]);
    if (open.length > 200) process.stdout.write(`… ${open.length - 200} more (moat posture run --json, or moat posture findings)\n`);
  }
  process.stdout.write(`\nrun ${run.id} at ${run.runAt}: ${SEVERITIES.map((s) => `${run.counts[s]} ${s}`).join(", ")}; ${run.suppressed} suppressed\n`);
}

/** `moat posture …`: posture checks over the installation's own data. */
export function register(program: Command): void {
  const posture = program.command("posture").description("posture checks: what is misconfigured now (certificates, keys, roles, sessions, listeners, scans)");

  posture
    .command("run")
    .description("run every posture check (or one) now, store the result and print it; exit 0 whatever it found")
    .option("--check <id>", "run only this check (moat posture list)")
    .option("--as-of <date>", "evaluate as if it were this time: what will be expiring or overdue by then (stored apart from the current posture)", isoTimeOption)
    .option("--json", "print JSON ({ runAt, findings, … })")
    .addHelpText("after", "\nExamples:\n  moat posture run\n  moat posture run --check device-certificate-shared --json\n")
    .action(async (o: { check?: string; asOf?: string; json?: boolean }, command: Command) =>
      withApp(command, ["pki", "policy", "posture"], async (app) => {
        let last = 0;
        const run = await app.posture.run({
          actor: cliActor(),
          ...(o.check ? { check: o.check } : {}),
          ...(o.asOf ? { at: Date.parse(o.asOf) } : {}),
          onProgress: (done, what) => {
            if (done - last >= 20_000) {
              last = done;
              process.stderr.write(`posture: ${done} ${what} read…\n`);
            }
          },
        });
        if (o.json) printJson({ runAt: run.runAt, findings: run.findings, id: run.id, scope: run.scope, checks: run.checks, counts: run.counts, suppressed: run.suppressed, auditSeq: run.auditSeq });
        else printRun(run);
      }),
    );

  posture
    .command("list")
    .description("list the posture checks with their ids, usual severity and fix")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat posture list --json\n")
    .action((o: { json?: boolean }) => {
      if (o.json) printJson(CHECKS);
      else
        printTable(CHECKS, [
          { header: "id", value: (c) => c.id },
          { header: "severity", value: (c) => c.severity },
          { header: "title", value: (c) => c.title },
        ]);
    });

  posture
    .command("runs")
    .description("list stored posture runs, newest first (the history)")
    .option("--limit <n>", "how many (max 1000)", parsePageLimit, 20)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat posture runs --limit 5\n")
    .action(async (o: { limit: number; json?: boolean }, command: Command) =>
      withApp(command, ["pki", "policy", "posture"], async (app) => {
        const runs = await app.posture.runs(o.limit);
        if (o.json) printJson(runs);
        else
          printTable(runs, [
            { header: "id", value: (r) => r.id },
            { header: "at", value: (r) => r.runAt },
            { header: "scope", value: (r) => r.scope },
            ...SEVERITIES.map((s) => ({ header: s, value: (r: (typeof runs)[number]) => r.counts[s] })),
            { header: "audit seq", value: (r) => r.auditSeq },
          ]);
      }),
    );

  posture
    .command("findings")
    .description("list the findings of a stored run (default: the newest full run), most severe first")
    .option("--run <id>", "this run instead of the newest full run")
    .option("--check <id>", "only this check")
    .addOption(new Option("--severity <level>", "only this severity").choices([...SEVERITIES]))
    .option("--limit <n>", "page size (max 1000)", parsePageLimit, 100)
    .option("--after <n>", "start after this position (the `next` of the previous page)", integerIn(0, Number.MAX_SAFE_INTEGER))
    .option("--json", "print JSON ({ run, findings, next })")
    .addHelpText("after", "\nExample:\n  moat posture findings --check device-certificate-expiring --json\n")
    .action(async (o: { run?: string; check?: string; severity?: string; limit: number; after?: number; json?: boolean }, command: Command) =>
      withApp(command, ["pki", "policy", "posture"], async (app) => {
        const runId = o.run ?? (await app.posture.latest())?.id;
        if (!runId) throw new MoatError("POSTURE_RUN_NOT_FOUND", "no posture run is stored yet: run moat posture run");
        const page = await app.posture.findings(runId, { limit: o.limit, ...(o.check ? { check: o.check } : {}), ...(o.severity ? { severity: o.severity } : {}), ...(o.after !== undefined ? { after: o.after } : {}) });
        if (o.json) printJson({ run: runId, ...page });
        else {
          printTable(page.findings, [
            { header: "severity", value: (f) => f.severity },
            { header: "check", value: (f) => f.check },
            { header: "resources", value: resourceText },
            { header: "suppressed", value: (f) => (f.suppressed ? `until ${f.suppressed.expiresAt}` : "") },
          ]);
          if (page.next !== null) process.stderr.write(`more: --after ${page.next}\n`);
        }
      }),
    );

  posture
    .command("suppress <check>")
    .description("accept one check's findings about one resource until a date (audited; it lapses by itself)")
    .requiredOption("--resource <id>", "the resource id the findings name (device id, serial, role, …)")
    .requiredOption("--reason <text>", "why this is accepted")
    .requiredOption("--expires <date>", "when the suppression lapses (YYYY-MM-DD or ISO-8601 time; at most a year ahead)", isoTimeOption)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat posture suppress device-certificate-shared --resource sensor-0042 --reason 'factory key, replaced in Q3' --expires 2026-09-30\n")
    .action(async (check: string, o: { resource: string; reason: string; expires: string; json?: boolean }, command: Command) =>
      withApp(command, ["pki", "policy", "posture"], async (app) => {
        const saved = await app.posture.suppress({ check, resource: o.resource, reason: o.reason, expiresAt: o.expires, actor: cliActor() });
        if (o.json) printJson(saved);
        else process.stdout.write(`suppressed ${saved.check} for ${saved.resource} until ${saved.expiresAt} (from the next run)\n`);
      }),
    );

  posture
    .command("suppressions")
    .description("list suppressions in force (with --all, also lapsed ones)")
    .option("--all", "include lapsed suppressions")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat posture suppressions --all --json\n")
    .action(async (o: { all?: boolean; json?: boolean }, command: Command) =>
      withApp(command, ["pki", "policy", "posture"], async (app) => {
        const rows = await app.posture.suppressions(o.all === true);
        if (o.json) printJson(rows);
        else
          printTable(rows, [
            { header: "check", value: (s) => s.check },
            { header: "resource", value: (s) => s.resource },
            { header: "expires", value: (s) => s.expiresAt },
            { header: "by", value: (s) => s.createdBy },
            { header: "reason", value: (s) => s.reason },
          ]);
      }),
    );
}
