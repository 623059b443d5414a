import type { Command } from "commander";
import { type AssignmentTarget, type RoleView, type Rule, formatRule, parseRuleSpec } from "../../policy/index.js";
import { cliActor, withApp } from "../context.js";
import { printJson, printRecord, printTable } from "../output.js";
import { collect } from "../parse.js";

interface TargetOptions {
  device?: string;
  group?: string;
  token?: string;
}

/** Exactly one of --device, --group, --token; anything else is a usage error (exit 2). */
function targetOf(o: TargetOptions, command: Command): AssignmentTarget {
  const given = (["device", "group", "token"] as const).filter((kind) => o[kind] !== undefined);
  if (given.length !== 1) command.error("error: give exactly one of --device ID, --group NAME or --token NAME", { exitCode: 2, code: "moat.usage" });
  const kind = given[0]!;
  return { kind, target: o[kind]! };
}

function withTarget(command: Command): Command {
  return command
    .option("--device <id>", "a device")
    .option("--group <group>", "a device group (every device in it)")
    .option("--token <name>", "an operator API token");
}

function showRole(role: RoleView): void {
  printRecord({ name: role.name, description: role.description, builtin: role.builtin, created: role.createdAt || null });
  process.stdout.write("\nRULES\n");
  role.rules.forEach((rule: Rule, i) => process.stdout.write(`  ${i}  ${formatRule(rule)}\n`));
  if (role.rules.length === 0) process.stdout.write("  (none)\n");
  process.stdout.write("\nASSIGNED TO\n");
  for (const a of role.assignments) process.stdout.write(`  ${a.kind} ${a.target}\n`);
  if (role.assignments.length === 0) process.stdout.write("  (none; devices and tokens may still hold it as their registry role)\n");
}

/** `moat role …`: roles, their rules, and who holds them. */
export function register(program: Command): void {
  const role = program.command("role").description("roles: allow/deny rules for devices (MQTT topics) and operators (API permissions)");

  role
    .command("create <name>")
    .description("create a role from --allow/--deny rules: 'publish:<topic filter>', 'subscribe:…', 'receive:…' or an operator permission like 'devices:read'")
    .option("--allow <rule>", "allow rule (repeatable)", collect, [])
    .option("--deny <rule>", "deny rule (repeatable); deny wins over allow", collect, [])
    .option("--description <text>", "what the role is for")
    .option("--json", "print the role as JSON")
    .addHelpText(
      "after",
      "\nExample:\n  moat role create sensor --allow 'publish:devices/${device.id}/telemetry/#' --deny 'subscribe:#'\n" +
        "  moat role create support --allow 'devices:read' --allow 'audit:read'\n",
    )
    .action(async (name: string, o: { allow: string[]; deny: string[]; description?: string; json?: boolean }, command: Command) => {
      // Parse every rule before opening anything, so a typo changes nothing.
      const rules = [...o.allow.map((spec) => parseRuleSpec(spec, "allow")), ...o.deny.map((spec) => parseRuleSpec(spec, "deny"))];
      await withApp(command, ["policy"], async (app) => {
        const created = await app.policy.createRole(name, rules, cliActor(), o.description === undefined ? {} : { description: o.description });
        if (o.json) printJson(created);
        else showRole(created);
      });
    });

  role
    .command("list")
    .description("list roles")
    .option("--json", "print JSON (with rules and assignments)")
    .addHelpText("after", "\nExample:\n  moat role list --json\n")
    .action(async (o: { json?: boolean }, command: Command) =>
      withApp(command, ["policy"], async (app) => {
        const roles = await app.policy.listRoles();
        if (o.json) printJson(roles);
        else
          printTable(roles, [
            { header: "name", value: (r: RoleView) => r.name },
            { header: "builtin", value: (r) => (r.builtin ? "yes" : "no") },
            { header: "rules", value: (r) => r.rules.length },
            { header: "assigned", value: (r) => r.assignments.length },
            { header: "description", value: (r) => r.description },
          ]);
      }),
    );

  role
    .command("show <name>")
    .description("show a role's rules and assignments")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat role show device\n")
    .action(async (name: string, o: { json?: boolean }, command: Command) =>
      withApp(command, ["policy"], async (app) => {
        const found = await app.policy.getRole(name);
        if (o.json) printJson(found);
        else showRole(found);
      }),
    );

  role
    .command("delete <name>")
    .description("delete a custom role and its assignments (built-in roles cannot be deleted)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat role delete sensor\n")
    .action(async (name: string, o: { json?: boolean }, command: Command) =>
      withApp(command, ["policy"], async (app) => {
        const result = await app.policy.deleteRole(name, cliActor());
        if (o.json) printJson(result);
        else process.stdout.write(`deleted role ${result.role} (${result.removedAssignments.length} assignment(s) removed)\n`);
      }),
    );

  withTarget(role.command("assign <role>").description("give a role to a device, a device group or an operator token"))
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat role assign sensor --group boilers\n  moat role assign auditor --token ci-pipeline\n")
    .action(async (name: string, o: TargetOptions & { json?: boolean }, command: Command) => {
      const target = targetOf(o, command);
      await withApp(command, ["policy"], async (app) => {
        const { assignment, created } = await app.policy.assignRole(name, target, cliActor());
        if (o.json) printJson({ ...assignment, created });
        else process.stdout.write(`${created ? "assigned" : "already assigned"}: role ${name} → ${target.kind} ${target.target}\n`);
      });
    });

  withTarget(role.command("unassign <role>").description("take a role away from a device, a device group or an operator token"))
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat role unassign sensor --device sensor-1\n")
    .action(async (name: string, o: TargetOptions & { json?: boolean }, command: Command) => {
      const target = targetOf(o, command);
      await withApp(command, ["policy"], async (app) => {
        await app.policy.unassignRole(name, target, cliActor());
        if (o.json) printJson({ role: name, ...target, removed: true });
        else process.stdout.write(`unassigned: role ${name} from ${target.kind} ${target.target}\n`);
      });
    });
}
