import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import type { Command } from "commander";
import { effectiveRules, replayEvents, type Rule } from "../../detect/index.js";
import { MoatError } from "../../errors.js";
import { cliActor, withApp } from "../context.js";
import { printJson, printTable } from "../output.js";

const MAX_RULES_FILE = 256 * 1024;

async function readRulesFile(path: string): Promise<string> {
  try {
    const text = await readFile(path, "utf8");
    if (text.length > MAX_RULES_FILE) throw new MoatError("DETECT_RULES_INVALID", `${path} is over ${MAX_RULES_FILE / 1024} KiB`);
    return text;
  } catch (error) {
    if (error instanceof MoatError) throw error;
    throw new MoatError("DETECT_RULES_INVALID", `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

function describe(rule: Rule): string {
  switch (rule.kind) {
    case "threshold":
      return `${rule.metric} over ${rule.window} >= ${rule.static}${rule.baseline ? ` and ${rule.baseline.factor}x baseline` : ""}${rule.groupPercentile ? ` and ${rule.groupPercentile.factor}x group p${rule.groupPercentile.p}` : ""}`;
    case "credential-stuffing":
      return `${rule.failures} failures, ${rule.clientIds} client ids per /${rule.ipv4Prefix} (/${rule.ipv6Prefix}) in ${rule.window}`;
    case "event":
      return `${rule.eventType} ${Object.entries(rule.match).map(([k, v]) => `${k} in ${v.join("|")}`).join(", ")}`;
    default:
      return rule.description;
  }
}

/** `moat detect …`: detection rules. */
export function register(program: Command): void {
  const detect = program.command("detect").description("behaviour detection: rules (built-in and YAML), and replaying recorded events through them");
  const rules = detect.command("rules").description("the rules detection runs");

  rules
    .command("apply <file>")
    .description("replace the stored rules with a YAML rules file; running servers reload them through the change feed")
    .option("--json", "print the rules in force as JSON")
    .addHelpText("after", "\nExample:\n  moat detect rules apply rules.yaml\n\nrules.yaml:\n  rules:\n    - name: publish-rate-burst\n      static: 40\n    - name: night-chatter\n      kind: threshold\n      metric: messagesSent\n      window: 1h\n      static: 5000\n      severity: low\n")
    .action(async (file: string, o: { json?: boolean }, command: Command) => {
      const text = await readRulesFile(file);
      await withApp(command, ["detect"], async (app) => {
        const applied = await app.detectRules.apply(text, cliActor());
        if (o.json) printJson(applied);
        else process.stderr.write(`applied ${file}: ${applied.filter((r) => r.enabled).length} rules in force\n`);
      });
    });

  rules
    .command("validate <file>")
    .description("check a YAML rules file without storing it (exit 1 with DETECT_RULES_INVALID naming the problem)")
    .option("--json", "print the checked rules as JSON")
    .addHelpText("after", "\nExample:\n  moat detect rules validate rules.yaml\n")
    .action(async (file: string, o: { json?: boolean }, command: Command) => {
      const text = await readRulesFile(file);
      await withApp(command, ["detect"], async (app) => {
        const checked = app.detectRules.validate(text);
        if (o.json) printJson(checked);
        else process.stdout.write(`${file}: ${checked.length} rules, valid\n`);
      });
    });

  rules
    .command("list")
    .description("the rules in force: built-ins (as overridden) and custom rules")
    .option("--json", "print JSON (an array of rules, each with its origin)")
    .addHelpText("after", "\nExample:\n  moat detect rules list --json\n")
    .action(async (o: { json?: boolean }, command: Command) =>
      withApp(command, ["detect"], async (app) => {
        const list = await app.detectRules.list();
        if (o.json) printJson(list);
        else
          printTable(list, [
            { header: "name", value: (r) => r.name },
            { header: "origin", value: (r) => r.origin },
            { header: "enabled", value: (r) => r.enabled },
            { header: "severity", value: (r) => r.severity },
            { header: "actions", value: (r) => r.defaultActions.join(",") },
            { header: "fires when", value: (r) => describe(r) },
          ]);
      }),
    );

  rules
    .command("test <file>")
    .description("replay recorded events (JSONL, one security event per line as the audit log stores it) through a rules file on a simulated clock; prints the alerts it would raise")
    .requiredOption("--events <file>", "the recorded events (JSONL)")
    .option("--json", "print JSON ({ events, alerts })")
    .addHelpText("after", "\nExample:\n  moat audit list --limit 1000 --json | jq -c 'reverse[]' > events.jsonl\n  moat detect rules test rules.yaml --events events.jsonl --json\n")
    .action(async (file: string, o: { events: string; json?: boolean }, command: Command) => {
      const text = await readRulesFile(file);
      await withApp(command, ["detect"], async (app) => {
        const rulesInForce = effectiveRules(app.detectRules.validate(text));
        const input = createReadStream(o.events, { encoding: "utf8" });
        const opened = new Promise<void>((resolve, reject) => {
          input.once("open", () => resolve());
          input.once("error", (error: NodeJS.ErrnoException) => reject(new MoatError("DETECT_EVENTS_INVALID", `cannot read ${o.events}: ${error.code ?? error.message}`)));
        });
        await opened;
        // Groups, group settings and the firmware inventory come from this installation, as a live server would see them.
        const result = await replayEvents(createInterface({ input, crlfDelay: Infinity }), rulesInForce, {
          deviceGroup: async (id) => (await app.devices.get(id).catch(() => null))?.group ?? null,
          groupSettings: () => app.groups.configured(),
          firmwareSecurityVersion: async (id) => (await app.firmwareInventory.get(id).catch(() => null))?.securityVersion ?? null,
        });
        if (o.json) printJson({ events: result.events, alerts: result.alerts });
        else {
          printTable(result.alerts, [
            { header: "rule", value: (a) => a.rule },
            { header: "subject", value: (a) => `${a.subject.kind}:${a.subject.id}` },
            { header: "severity", value: (a) => a.severity },
            { header: "count", value: (a) => a.count },
            { header: "first seen", value: (a) => a.firstSeen },
          ]);
          process.stderr.write(`${result.events} events replayed\n`);
        }
      });
    });
}
