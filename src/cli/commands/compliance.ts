import { readFileSync } from "node:fs";
import { Option, type Command } from "commander";
import { CATALOGUES, STANDARDS, catalogueOf, coverageMatrix, reportHtml, reportMarkdown, verifyReportText, type VerifyOutcome } from "../../compliance/index.js";
import { MoatError } from "../../errors.js";
import { writeFileAtomicSync } from "../../lib/atomic-file.js";
import { cliActor, withApp } from "../context.js";
import { printJson, printTable } from "../output.js";
import { isoTimeOption, parsePageLimit } from "../parse.js";

const SERVICES = ["pki", "policy", "posture", "compliance"] as const;

function readInput(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (cause) {
    throw new MoatError("VALIDATION_FAILED", `cannot read the ${what} ${path}: ${(cause as NodeJS.ErrnoException).code ?? "error"}`, { cause });
  }
}

/** Reports are public material: written atomically, readable by all. */
function writeOut(path: string | undefined, text: string): void {
  const body = text.endsWith("\n") ? text : `${text}\n`;
  if (!path) process.stdout.write(body);
  else {
    writeFileAtomicSync(path, body, { mode: 0o644 });
    process.stderr.write(`written to ${path}\n`);
  }
}

function printVerify(outcome: VerifyOutcome, json: boolean | undefined): void {
  if (json) printJson(outcome);
  else if (outcome.ok) process.stdout.write(`report verified: signed by audit key ${outcome.keyId}, sha256 ${outcome.hash}\n`);
  else process.stdout.write(`REPORT NOT VERIFIED: ${outcome.problem}\n`);
  if (!outcome.ok) process.exitCode = 1;
}

const standardOption = () => new Option("--standard <id>", "the framework").choices([...STANDARDS]);

/** `moat compliance …`: control catalogues, signed reports, attestations. */
export function register(program: Command): void {
  const compliance = program.command("compliance").description("compliance evidence: control catalogues, signed reports (ETSI EN 303 645, NIST IR 8259A, IEC 62443-4-2, CRA, PSTI), attestations");

  compliance
    .command("report")
    .description("write a report for one framework from the latest posture run, configuration, audit events and attestations; the JSON is signed with the audit key and its hash goes into the audit log (exit 0 when written)")
    .addOption(standardOption().makeOptionMandatory())
    .addOption(new Option("--format <format>", "output format").choices(["json", "html", "md"]).default("json"))
    .option("--out <file>", "write to this file (default: stdout)")
    .option("--fresh", "run every posture check first instead of using the latest stored run")
    .addHelpText("after", "\nExamples:\n  moat compliance report --standard etsi-en-303-645 --out etsi.json\n  moat compliance report --standard uk-psti --format html --out psti.html\n")
    .action(async (o: { standard: string; format: "json" | "html" | "md"; out?: string; fresh?: boolean }, command: Command) =>
      withApp(command, SERVICES, async (app) => {
        const { report, hash } = await app.compliance.report({ standard: o.standard, actor: cliActor(), ...(o.fresh ? { fresh: true } : {}) });
        writeOut(o.out, o.format === "json" ? JSON.stringify(report, null, 2) : o.format === "md" ? reportMarkdown(report, hash) : reportHtml(report, hash));
        process.stderr.write(`${report.standard.id}: score ${report.score.percent}% (${report.score.counts.fail} failing, ${report.score.counts.manual} manual); report ${report.id}, sha256 ${hash}\n`);
      }),
    );

  compliance
    .command("verify <file>")
    .description("check a JSON report: unchanged since signing and signed by the installation's audit key (or --key); exit 0 if so, 1 otherwise")
    .option("--key <file>", "verifier key from `moat audit key export` (default: this installation's audit key)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat audit key export --out audit.vkey && moat compliance verify etsi.json --key audit.vkey\n")
    .action(async (file: string, o: { key?: string; json?: boolean }, command: Command) => {
      const text = readInput(file, "report");
      if (o.key) return printVerify(verifyReportText(text, readInput(o.key, "verifier key")), o.json);
      await withApp(command, [], async (app) => printVerify(verifyReportText(text, await app.auditKeys.verifierKey()), o.json));
    });

  compliance
    .command("attest <control>")
    .description("record a manual attestation for STANDARD:ID (audited); when it expires the control is manual again")
    .requiredOption("--statement <text>", "what is attested")
    .option("--evidence <url>", "where the evidence is (http(s) URL)")
    .requiredOption("--owner <name>", "who answers for it")
    .requiredOption("--expires <date>", "when it lapses (YYYY-MM-DD or ISO-8601 time; at most three years ahead)", isoTimeOption)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat compliance attest etsi-en-303-645:5.2-1 --statement 'Disclosure policy at /security' --evidence https://example.com/security --owner 'Product security' --expires 2027-06-30\n")
    .action(async (control: string, o: { statement: string; evidence?: string; owner: string; expires: string; json?: boolean }, command: Command) =>
      withApp(command, SERVICES, async (app) => {
        const saved = await app.compliance.attest({ control, statement: o.statement, owner: o.owner, expiresAt: o.expires, actor: cliActor(), ...(o.evidence ? { evidenceUrl: o.evidence } : {}) });
        if (o.json) printJson(saved);
        else process.stdout.write(`attested ${saved.standard}:${saved.control} until ${saved.expiresAt} (#${saved.id}${saved.auditSeq !== null ? `, audit seq ${saved.auditSeq}` : ""})\n`);
      }),
    );

  compliance
    .command("attestations")
    .description("list attestations in force (with --all, also expired ones)")
    .addOption(standardOption())
    .option("--all", "include expired attestations")
    .option("--limit <n>", "how many (max 1000)", parsePageLimit, 100)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat compliance attestations --standard uk-psti --json\n")
    .action(async (o: { standard?: string; all?: boolean; limit: number; json?: boolean }, command: Command) =>
      withApp(command, SERVICES, async (app) => {
        const rows = await app.compliance.attestations({ limit: o.limit, ...(o.standard ? { standard: o.standard } : {}), ...(o.all ? { all: true } : {}) });
        if (o.json) printJson(rows);
        else
          printTable(rows, [
            { header: "control", value: (a) => `${a.standard}:${a.control}` },
            { header: "owner", value: (a) => a.owner },
            { header: "expires", value: (a) => a.expiresAt },
            { header: "statement", value: (a) => a.statement },
          ]);
      }),
    );

  compliance
    .command("controls")
    .description("list a framework's controls, with their current status (from the latest posture run and attestations)")
    .addOption(standardOption().makeOptionMandatory())
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat compliance controls --standard iec-62443-4-2\n")
    .action(async (o: { standard: string; json?: boolean }, command: Command) =>
      withApp(command, SERVICES, async (app) => {
        const { controls } = await app.compliance.evaluate(o.standard);
        if (o.json) printJson(controls);
        else
          printTable(controls, [
            { header: "id", value: (c) => c.id },
            { header: "coverage", value: (c) => c.coverage },
            { header: "status", value: (c) => c.status },
            { header: "title", value: (c) => c.title },
          ]);
      }),
    );

  compliance
    .command("coverage")
    .description("the coverage matrix: per framework, how many controls are automatic, evidence-assisted, manual or not applicable")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat compliance coverage --json\n")
    .action((o: { json?: boolean }) => {
      const rows = coverageMatrix();
      if (o.json) printJson(rows);
      else
        printTable(rows, [
          { header: "standard", value: (r) => r.standard },
          { header: "controls", value: (r) => r.controls },
          { header: "automatic", value: (r) => r.automatic },
          { header: "evidence-assisted", value: (r) => r["evidence-assisted"] },
          { header: "manual", value: (r) => r.manual },
          { header: "n/a", value: (r) => r["not-applicable"] },
        ]);
    });

  compliance
    .command("standards")
    .description("list the control catalogues (framework, edition, catalogue version)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat compliance standards\n")
    .action((o: { json?: boolean }) => {
      const rows = CATALOGUES.map((c) => ({ standard: c.standard, title: c.title, edition: c.edition, catalogueVersion: c.catalogueVersion, controls: c.controls.length }));
      if (o.json) printJson(rows);
      else
        printTable(rows, [
          { header: "standard", value: (r) => r.standard },
          { header: "version", value: (r) => r.catalogueVersion },
          { header: "controls", value: (r) => r.controls },
          { header: "edition", value: (r) => r.edition },
        ]);
    });

  compliance
    .command("reports")
    .description("list stored reports (score, hash), newest first")
    .addOption(standardOption())
    .option("--limit <n>", "how many (max 1000)", parsePageLimit, 20)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat compliance reports --standard etsi-en-303-645\n")
    .action(async (o: { standard?: string; limit: number; json?: boolean }, command: Command) =>
      withApp(command, SERVICES, async (app) => {
        const rows = await app.compliance.reports({ limit: o.limit, ...(o.standard ? { standard: o.standard } : {}) });
        if (o.json) printJson(rows);
        else
          printTable(rows, [
            { header: "id", value: (r) => r.id },
            { header: "standard", value: (r) => r.standard },
            { header: "created", value: (r) => r.createdAt },
            { header: "score", value: (r) => `${r.summary.score}%` },
            { header: "sha256", value: (r) => r.hash },
          ]);
      }),
    );

  compliance
    .command("psti-statement")
    .description("draft a UK PSTI statement of compliance (Markdown) from the configuration and attestations")
    .option("--out <file>", "write to this file (default: stdout)")
    .addHelpText("after", "\nExample:\n  moat compliance psti-statement --out statement-of-compliance.md\n")
    .action(async (o: { out?: string }, command: Command) =>
      withApp(command, SERVICES, async (app) => {
        catalogueOf("uk-psti");
        writeOut(o.out, await app.compliance.pstiStatement());
      }),
    );
}
