import type { Command } from "commander";
import { MAX_MIN_SECURITY_VERSION, type GroupSettingName, type GroupSettingsPatch, type GroupSettingsView } from "../../identity/index.js";
import { cliActor, withApp } from "../context.js";
import { printJson, printRecord, printTable } from "../output.js";
import { collect, integerIn } from "../parse.js";

const SETTINGS: Record<string, GroupSettingName> = { "allowed-cidrs": "allowedCidrs", "silence-window": "silenceWindow", "min-security-version": "minSecurityVersion" };

const COLUMNS = [
  { header: "group", value: (g: GroupSettingsView) => g.group },
  { header: "devices", value: (g: GroupSettingsView) => g.devices },
  { header: "allowed cidrs", value: (g: GroupSettingsView) => g.allowedCidrs?.join(",") },
  { header: "silence window", value: (g: GroupSettingsView) => g.silenceWindow },
  { header: "min security version", value: (g: GroupSettingsView) => g.minSecurityVersion },
];

function show(group: GroupSettingsView, json?: boolean): void {
  if (json) printJson(group);
  else printRecord({ ...group });
}

/** `moat group …`: per-group settings that detection and posture read. */
export function register(program: Command): void {
  const group = program.command("group").description("device groups and their settings: allowed source networks, silence window, minimum firmware security version");

  group
    .command("set <group>")
    .description("change a group's settings (flags not given stay as they are; --clear unsets one)")
    .option("--allowed-cidr <cidr>", "a network the group's devices connect from (repeatable; replaces the list)", collect)
    .option("--silence-window <duration>", "after this long without a connection a device counts as missing, e.g. 30m, 1h")
    .option("--min-security-version <n>", "lowest firmware security version the group should run", integerIn(0, MAX_MIN_SECURITY_VERSION))
    .option("--clear <setting>", `unset a setting (repeatable): ${Object.keys(SETTINGS).join(", ")}`, collect)
    .option("--json", "print the group as JSON")
    .addHelpText("after", "\nExample:\n  moat group set boilers --allowed-cidr 10.20.0.0/16 --allowed-cidr 2001:db8:20::/48 --silence-window 1h --min-security-version 7\n  moat group set boilers --clear silence-window\n")
    .action(async (name: string, o: { allowedCidr?: string[]; silenceWindow?: string; minSecurityVersion?: number; clear?: string[]; json?: boolean }, command: Command) => {
      const patch: { -readonly [K in keyof GroupSettingsPatch]: GroupSettingsPatch[K] } = {};
      for (const setting of o.clear ?? []) {
        const key = SETTINGS[setting];
        if (!key) return command.error(`error: --clear takes one of ${Object.keys(SETTINGS).join(", ")}, not '${setting}'`, { exitCode: 2 });
        patch[key] = null;
      }
      if (o.allowedCidr !== undefined) patch.allowedCidrs = o.allowedCidr;
      if (o.silenceWindow !== undefined) patch.silenceWindow = o.silenceWindow;
      if (o.minSecurityVersion !== undefined) patch.minSecurityVersion = o.minSecurityVersion;
      if (Object.keys(patch).length === 0) return command.error("error: give at least one setting to change (see --help)", { exitCode: 2 });
      await withApp(command, [], async (app) => show(await app.groups.set(name, patch, cliActor()), o.json));
    });

  group
    .command("show <group>")
    .description("show a group's settings and how many devices carry it (unset settings show as -)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat group show boilers --json\n")
    .action(async (name: string, o: { json?: boolean }, command: Command) => withApp(command, [], async (app) => show(await app.groups.get(name), o.json)));

  group
    .command("list")
    .description("list every group that has devices or settings")
    .option("--json", "print JSON (an array of groups)")
    .addHelpText("after", "\nExample:\n  moat group list --json\n")
    .action(async (o: { json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const groups = await app.groups.list();
        if (o.json) printJson(groups);
        else printTable(groups, COLUMNS);
      }),
    );
}
