import { type Command, InvalidArgumentError, Option } from "commander";
import type { LintFinding, LintSeverity } from "../../policy/index.js";
import { withApp } from "../context.js";
import { printJson, printTable } from "../output.js";

const SEVERITIES: readonly LintSeverity[] = ["high", "medium", "low"];

/** `moat policy …`: the decision simulator and lint. */
export function register(program: Command): void {
  const policy = program.command("policy").description("simulate decisions and lint roles");

  policy
    .command("check")
    .description("may this device publish, subscribe or receive on a topic? Prints allow or deny and the deciding rule (exit 0 either way)")
    .requiredOption("--device <id>", "device id")
    .addOption(new Option("--action <action>", "MQTT action").choices(["publish", "subscribe", "receive"]).makeOptionMandatory())
    .requiredOption("--topic <topic>", "topic name (publish, receive) or topic filter (subscribe)")
    .option("--cert-cn <cn>", "certificate common name, for rules that use ${cert.cn}")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat policy check --device sensor-1 --action publish --topic devices/sensor-1/telemetry/temp\n")
    .action(async (o: { device: string; action: string; topic: string; certCn?: string; json?: boolean }, command: Command) =>
      withApp(command, ["policy"], async (app) => {
        const result = await app.policy.explain(o.device, o.action, o.topic, o.certCn === undefined ? {} : { certCn: o.certCn });
        if (o.json) {
          printJson(result);
          return;
        }
        const verdict = result.allow ? "ALLOW" : "DENY";
        const why = result.rule
          ? `rule ${result.rule.index} of role ${result.rule.role}: ${result.rule.effect} ${result.rule.action}:${result.rule.resource}`
          : result.reason === "no-roles"
            ? "the device holds no role (default deny)"
            : "no rule matches (default deny)";
        process.stdout.write(`${verdict} ${o.action} ${o.topic} for ${result.device.id}\n  ${why}\n  roles: ${result.roles.join(", ") || "(none)"}` + (result.device.status === "quarantined" ? " (quarantined: only the quarantine role applies)" : "") + "\n");
      }),
    );

  policy
    .command("lint")
    .description("report overly permissive rules: '#' or '+/#', $SYS access, shared topics without a device variable")
    .option("--fail-on <severity>", "exit 1 when a finding is at least this severe (high, medium, low)", (value: string) => {
      if (!SEVERITIES.includes(value as LintSeverity)) throw new InvalidArgumentError("use high, medium or low");
      return value as LintSeverity;
    })
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat policy lint --fail-on high\n")
    .action(async (o: { failOn?: LintSeverity; json?: boolean }, command: Command) =>
      withApp(command, ["policy"], async (app) => {
        const findings = await app.policy.lint();
        if (o.json) printJson(findings);
        else
          printTable(findings, [
            { header: "severity", value: (f: LintFinding) => f.severity },
            { header: "role", value: (f) => f.role },
            { header: "rule", value: (f) => `${f.index}: ${f.rule}` },
            { header: "finding", value: (f) => f.message },
          ]);
        if (o.failOn !== undefined) {
          const limit = SEVERITIES.indexOf(o.failOn);
          if (findings.some((f) => SEVERITIES.indexOf(f.severity) <= limit)) process.exitCode = 1;
        }
      }),
    );
}
