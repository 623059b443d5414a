import { readFileSync, statSync } from "node:fs";
import type { Command } from "commander";
import { MoatError } from "../../errors.js";
import type { ActionRecord, StoredPlaybook } from "../../respond/index.js";
import { cliActor, withApp } from "../context.js";
import { printJson, printRecord, printTable, type Column } from "../output.js";
import { parsePageLimit } from "../parse.js";

const PLAYBOOK_COLUMNS: Column<StoredPlaybook>[] = [
  { header: "name", value: (p) => p.name },
  { header: "rule", value: (p) => p.definition.rule },
  { header: "mode", value: (p) => p.definition.mode },
  { header: "actions", value: (p) => p.definition.actions.join(",") },
  { header: "cap", value: (p) => `${p.definition.rateLimit.max}/${Math.round(p.definition.rateLimit.windowMs / 1000)}s` },
  { header: "updated", value: (p) => p.updatedAt },
];

const ACTION_COLUMNS: Column<ActionRecord>[] = [
  { header: "id", value: (a) => a.id },
  { header: "when", value: (a) => a.createdAt },
  { header: "alert", value: (a) => a.alertId },
  { header: "playbook", value: (a) => a.playbook ?? `(rule ${a.rule})` },
  { header: "action", value: (a) => a.action },
  { header: "subject", value: (a) => `${a.subject.kind}:${a.subject.id}` },
  { header: "status", value: (a) => a.status },
  { header: "reason", value: (a) => a.reason },
];

/** Reads a playbook file (at most 16 KiB; the playbook parser bounds it again). */
function readPlaybookFile(path: string): string {
  try {
    if (statSync(path).size > 16 * 1024) throw new MoatError("PLAYBOOK_INVALID", `${path} is over 16 KiB`);
    return readFileSync(path, "utf8");
  } catch (error) {
    if (error instanceof MoatError) throw error;
    throw new MoatError("PLAYBOOK_INVALID", `cannot read ${path}: ${(error as Error).message}`);
  }
}

/** `moat playbook …`: response playbooks and the actions they took. */
export function register(program: Command): void {
  const playbook = program.command("playbook").description("response playbooks: which actions answer which detection rule, their actions and undo");

  playbook
    .command("apply <file>")
    .description("validate a playbook (YAML) and store it; a running server picks it up through the change feed")
    .option("--json", "print the stored playbook as JSON")
    .addHelpText(
      "after",
      "\nExample:\n  cat > contain.yaml <<'YAML'\n  name: contain-probers\n  rule: topic-probing\n  mode: dry-run          # enforce to act\n  actions: [quarantine, notify]\n  rateLimit: { max: 5, window: 10m }\n  YAML\n  moat playbook apply contain.yaml\n",
    )
    .action(async (file: string, o: { json?: boolean }, command: Command) => {
      const source = readPlaybookFile(file);
      await withApp(command, ["respond"], async (app) => {
        const { playbook: stored, created } = await app.respond.playbooks.apply(source, cliActor());
        if (o.json) printJson({ ...stored.definition, created, updatedAt: stored.updatedAt });
        else process.stdout.write(`${created ? "created" : "replaced"} playbook ${stored.name}: rule ${stored.definition.rule}, ${stored.definition.mode}, actions ${stored.definition.actions.join(", ")}\n`);
      });
    });

  playbook
    .command("list")
    .description("list playbooks")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat playbook list --json\n")
    .action(async (o: { json?: boolean }, command: Command) =>
      withApp(command, ["respond"], async (app) => {
        const playbooks = await app.respond.playbooks.list();
        if (o.json) printJson(playbooks.map((p) => ({ ...p.definition, updatedAt: p.updatedAt, updatedBy: p.updatedBy })));
        else printTable(playbooks, PLAYBOOK_COLUMNS);
      }),
    );

  playbook
    .command("show <name>")
    .description("show a playbook and the YAML as applied")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat playbook show contain-probers\n")
    .action(async (name: string, o: { json?: boolean }, command: Command) =>
      withApp(command, ["respond"], async (app) => {
        const p = await app.respond.playbooks.get(name);
        if (o.json) printJson({ ...p.definition, source: p.source, updatedAt: p.updatedAt, updatedBy: p.updatedBy });
        else process.stdout.write(`# ${p.name}, updated ${p.updatedAt} by ${p.updatedBy}\n${p.source}${p.source.endsWith("\n") ? "" : "\n"}`);
      }),
    );

  playbook
    .command("delete <name>")
    .description("delete a playbook (the actions it took stay on record)")
    .addHelpText("after", "\nExample:\n  moat playbook delete contain-probers\n")
    .action(async (name: string, _o: unknown, command: Command) =>
      withApp(command, ["respond"], async (app) => {
        await app.respond.playbooks.delete(name, cliActor());
        process.stdout.write(`deleted playbook ${name}\n`);
      }),
    );

  playbook
    .command("actions")
    .description("list response actions (done, dry-run, skipped, failed, undone), newest first")
    .option("--alert <id>", "only actions for this alert")
    .option("--playbook <name>", "only actions of this playbook")
    .option("--limit <n>", "how many (max 1000)", parsePageLimit, 100)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat playbook actions --alert al_3f2a --json\n")
    .action(async (o: { alert?: string; playbook?: string; limit: number; json?: boolean }, command: Command) =>
      withApp(command, ["respond"], async (app) => {
        const actions = await app.respond.executor.listActions({ limit: o.limit, ...(o.alert ? { alertId: o.alert } : {}), ...(o.playbook ? { playbook: o.playbook } : {}) });
        if (o.json) printJson(actions);
        else printTable(actions, ACTION_COLUMNS);
      }),
    );

  playbook
    .command("undo <actionId>")
    .description("undo an automatic action: a quarantine returns the device to its earlier status, a ban is lifted (revocations and sent notifications cannot be undone)")
    .option("--json", "print the action as JSON")
    .addHelpText("after", "\nExample:\n  moat playbook undo act_0c1d2e3f405162738495\n")
    .action(async (id: string, o: { json?: boolean }, command: Command) =>
      withApp(command, ["respond"], async (app) => {
        const action = await app.respond.executor.undo(id, cliActor());
        if (o.json) printJson(action);
        else printRecord({ id: action.id, action: action.action, subject: `${action.subject.kind}:${action.subject.id}`, status: action.status, undoneAt: action.undoneAt, undoneBy: action.undoneBy });
      }),
    );
}
