import type { Command } from "commander";
import type { AlertView } from "../../detect/index.js";
import { cliActor, withApp } from "../context.js";
import { printJson, printRecord, printTable } from "../output.js";
import { parsePageLimit } from "../parse.js";

const COLUMNS = [
  { header: "id", value: (a: AlertView) => a.id },
  { header: "rule", value: (a: AlertView) => a.rule },
  { header: "subject", value: (a: AlertView) => `${a.subject.kind}:${a.subject.id}` },
  { header: "severity", value: (a: AlertView) => a.severity },
  { header: "status", value: (a: AlertView) => a.status },
  { header: "count", value: (a: AlertView) => a.count },
  { header: "last seen", value: (a: AlertView) => a.lastSeen },
];

function show(alert: AlertView, json?: boolean): void {
  if (json) printJson(alert);
  else {
    const { evidence, ...rest } = alert;
    printRecord({ ...rest, subject: `${alert.subject.kind}:${alert.subject.id}` });
    process.stdout.write("evidence:\n");
    for (const item of evidence) process.stdout.write(`  ${JSON.stringify(item)}\n`);
  }
}

/** `moat alerts …`: what detection raised. */
export function register(program: Command): void {
  const alerts = program.command("alerts").description("alerts raised by detection: list, show, acknowledge, resolve");

  alerts
    .command("list")
    .description("list alerts, newest first")
    .option("--device <id>", "only alerts about this device")
    .option("--open", "only open or acknowledged alerts")
    .option("--rule <name>", "only alerts of this rule")
    .option("--limit <n>", "page size (max 1000)", parsePageLimit, 100)
    .option("--after <id>", "start after this alert (the id printed as `more:` on stderr)")
    .option("--json", "print a JSON array of { id, rule, subject: { kind, id }, severity, status, count, firstSeen, lastSeen, evidence }")
    .addHelpText("after", "\nExample:\n  moat alerts list --device sensor-0042 --open --json\n")
    .action(async (o: { device?: string; open?: boolean; rule?: string; limit: number; after?: string; json?: boolean }, command: Command) =>
      withApp(command, ["detect"], async (app) => {
        const page = await app.alerts.list({ ...(o.device ? { deviceId: o.device } : {}), ...(o.open ? { open: true } : {}), ...(o.rule ? { rule: o.rule } : {}), limit: o.limit, ...(o.after ? { after: o.after } : {}) });
        if (o.json) printJson(page.alerts);
        else printTable(page.alerts, COLUMNS);
        if (page.next) process.stderr.write(`more: --after ${page.next}\n`);
      }),
    );

  alerts
    .command("show <id>")
    .description("one alert with its evidence")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat alerts show 0b5e1c9e-4a51-4c5e-9d0f-1f2a3b4c5d6e --json\n")
    .action(async (id: string, o: { json?: boolean }, command: Command) => withApp(command, ["detect"], async (app) => show(await app.alerts.get(id), o.json)));

  for (const [verb, what] of [
    ["ack", "acknowledge an alert (someone is on it; a new firing still counts into it)"],
    ["resolve", "resolve an alert (the next firing of its rule opens a new one)"],
  ] as const)
    alerts
      .command(`${verb} <id>`)
      .description(what)
      .option("--json", "print JSON")
      .addHelpText("after", `\nExample:\n  moat alerts ${verb} 0b5e1c9e-4a51-4c5e-9d0f-1f2a3b4c5d6e\n`)
      .action(async (id: string, o: { json?: boolean }, command: Command) =>
        withApp(command, ["detect"], async (app) => show(verb === "ack" ? await app.alerts.acknowledge(id, cliActor()) : await app.alerts.resolve(id, cliActor()), o.json)),
      );
}
