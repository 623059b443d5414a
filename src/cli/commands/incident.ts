import { Command, Option } from "commander";
import { incidentMarkdown, type IncidentRecord } from "../../respond/index.js";
import { cliActor, withApp } from "../context.js";
import { collect, parsePageLimit } from "../parse.js";
import { printJson, printRecord, printTable, type Column } from "../output.js";

const COLUMNS: Column<IncidentRecord>[] = [
  { header: "id", value: (i) => i.id },
  { header: "status", value: (i) => i.status },
  { header: "severity", value: (i) => i.severity },
  { header: "title", value: (i) => i.title },
  { header: "alerts", value: (i) => i.alertIds.length },
  { header: "opened", value: (i) => i.openedAt },
];

function show(incident: IncidentRecord, json?: boolean): void {
  if (json) printJson(incident);
  else printRecord({ ...incident, alertIds: incident.alertIds.join(", ") });
}

/** `moat incident …`: incidents grouping alerts and actions, with timelines from the audit log. */
export function register(program: Command): void {
  const incident = program.command("incident").description("incidents: group alerts and response actions, with a timeline from the audit log (JSON or Markdown)");

  incident
    .command("open <title>")
    .description("open an incident grouping alerts")
    .option("--alert <id>", "an alert id (repeatable)", collect, [])
    .addOption(new Option("--severity <severity>", "severity (default: the highest of its alerts)").choices(["info", "low", "medium", "high", "critical"]))
    .option("--json", "print JSON")
    .addHelpText("after", '\nExample:\n  moat incident open "topic scan from sensor-0042" --alert al_3f2a --alert al_77c1\n')
    .action(async (title: string, o: { alert: string[]; severity?: string; json?: boolean }, command: Command) =>
      withApp(command, ["respond"], async (app) => show(await app.respond.incidents.open({ title, alertIds: o.alert, ...(o.severity ? { severity: o.severity } : {}) }, cliActor()), o.json)),
    );

  incident
    .command("list")
    .description("list incidents, newest first")
    .addOption(new Option("--status <status>", "only open or closed").choices(["open", "closed"]))
    .option("--limit <n>", "how many (max 1000)", parsePageLimit, 100)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat incident list --status open --json\n")
    .action(async (o: { status?: "open" | "closed"; limit: number; json?: boolean }, command: Command) =>
      withApp(command, ["respond"], async (app) => {
        const rows = await app.respond.incidents.list({ limit: o.limit, ...(o.status ? { status: o.status } : {}) });
        if (o.json) printJson(rows);
        else printTable(rows, COLUMNS);
      }),
    );

  incident
    .command("show <id>")
    .description("an incident with its alerts, actions and timeline (each entry with its audit sequence number)")
    .addOption(new Option("--format <format>", "text, json or md (the post-incident report)").choices(["text", "json", "md"]).default("text"))
    .option("--json", "the same as --format json")
    .addHelpText("after", "\nExample:\n  moat incident show inc_5d1c0e2a9b3f4c6d --format md > report.md\n")
    .action(async (id: string, o: { format: "text" | "json" | "md"; json?: boolean }, command: Command) =>
      withApp(command, ["respond"], async (app) => {
        const report = await app.respond.incidents.report(id);
        const format = o.json ? "json" : o.format;
        if (format === "json") printJson(report);
        else if (format === "md") process.stdout.write(incidentMarkdown(report));
        else {
          show(report.incident);
          process.stdout.write("\n");
          printTable(report.timeline, [
            { header: "seq", value: (e) => e.seq },
            { header: "time", value: (e) => e.time },
            { header: "actor", value: (e) => e.actor },
            { header: "event", value: (e) => e.type },
            { header: "what happened", value: (e) => e.summary },
          ]);
          if (report.truncated) process.stderr.write("the timeline was cut; see moat audit list for the rest\n");
        }
      }),
    );

  incident
    .command("close <id>")
    .description("close an incident (its timeline ends with the closing entry)")
    .option("--resolution <text>", "what was found and done")
    .option("--json", "print JSON")
    .addHelpText("after", '\nExample:\n  moat incident close inc_5d1c0e2a9b3f4c6d --resolution "misconfigured firmware 2.3.1; device re-flashed"\n')
    .action(async (id: string, o: { resolution?: string; json?: boolean }, command: Command) =>
      withApp(command, ["respond"], async (app) => show(await app.respond.incidents.close(id, o.resolution, cliActor()), o.json)),
    );
}
