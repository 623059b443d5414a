import type { Command } from "commander";
import { adminSecretName, checkDrift, desiredState, DynsecAdmin, mosquittoPaths, readMosquittoSetup, sealedSecrets, setupMosquitto } from "../../mosquitto/index.js";
import { mosquittoDeviceSource } from "../../serve.js";
import { cliActor, configFrom, withApp } from "../context.js";
import { printJson, printRecord } from "../output.js";
import { parsePort } from "../parse.js";

/** `moat mosquitto setup|status`: Mosquitto 2 as Moat's data plane (docs/broker.md). */
export function register(program: Command): void {
  const group = program.command("mosquitto").description("Mosquitto as the data plane: set up its directory, check and fix drift");

  group
    .command("setup")
    .description("write a Mosquitto configuration for Moat: TLS listener with Moat's CA and CRL, dynamic security, admin socket")
    .requiredOption("--dir <dir>", "directory to create (refused if it exists, is not empty and was not made by setup)")
    .option("--port <port>", "MQTT over TLS port Mosquitto listens on", parsePort, 8883)
    .option("--host <address>", "address the listener binds to (default: the host setting)")
    .option("--plugin <path>", "the dynamic-security plugin (default: found in the distribution's library folders)")
    .option("--json", "print what was written as JSON")
    .addHelpText(
      "after",
      "\nExample:\n  moat mosquitto setup --dir /var/lib/moat-mosquitto --port 8883\n  MOAT_BROKER_MODE=mosquitto MOAT_BROKER_MOSQUITTO_DIR=/var/lib/moat-mosquitto moat serve\n",
    )
    .action(async (o: { dir: string; port: number; host?: string; plugin?: string; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const setup = await setupMosquitto({
          dir: o.dir,
          port: o.port,
          host: o.host ?? app.config.host,
          ...(o.plugin ? { plugin: o.plugin } : {}),
          secrets: sealedSecrets(app.meta, app.envelope),
        });
        await app.audit.emit({ type: "mosquitto.setup", severity: "info", actor: cliActor(), subject: setup.dir, data: { port: setup.port, host: setup.host } });
        if (o.json) printJson(setup);
        else {
          printRecord({ dir: setup.dir, port: setup.port, host: setup.host, plugin: setup.plugin, config: mosquittoPaths(setup.dir).conf });
          process.stderr.write(`next: set broker.mode = mosquitto and broker.mosquitto.dir = ${setup.dir} (MOAT_BROKER_MODE, MOAT_BROKER_MOSQUITTO_DIR) and run moat serve\n`);
        }
      }),
    );

  group
    .command("status")
    .description("compare the clients and roles in the running Mosquitto with Moat's view (drift); --fix repairs it")
    .option("--dir <dir>", "the Mosquitto directory (default: broker.mosquitto.dir)")
    .option("--fix", "apply the commands that make Mosquitto match Moat")
    .option("--json", "machine-readable output")
    .addHelpText("after", "\nExample:\n  moat mosquitto status --json\n  moat mosquitto status --fix\n")
    .action(async (o: { dir?: string; fix?: boolean; json?: boolean }, command: Command) =>
      withApp(command, ["policy"], async (app) => {
        const setup = readMosquittoSetup(o.dir ?? configFrom(command)["broker.mosquitto.dir"]);
        const password = (await sealedSecrets(app.meta, app.envelope).get(adminSecretName(setup.dir))).toString("utf8");
        await app.policy.reload();
        const desired = await desiredState(mosquittoDeviceSource(app), app.policy);
        const admin = await DynsecAdmin.connect(mosquittoPaths(setup.dir).socket, password, { timeoutMs: 5_000, reconnect: false });
        try {
          const { report, fixed } = await checkDrift(admin, desired, o.fix === true);
          if (o.json) printJson({ dir: setup.dir, port: setup.port, ...report, fixed });
          else {
            printRecord({
              dir: setup.dir,
              port: setup.port,
              devices: report.devices,
              "in sync": report.inSync,
              "missing clients": report.missingClients.join(", ") || "-",
              "extra clients": report.extraClients.join(", ") || "-",
              "differing clients": report.differingClients.map((c) => c.deviceId).join(", ") || "-",
              "differing roles": report.differingRoles.map((r) => r.rolename).join(", ") || "-",
              "extra roles": report.extraRoles.join(", ") || "-",
              "default access": report.defaultAclDiffers ? "differs (not deny-by-default)" : "deny by default",
              ...(o.fix ? { fixed: `${fixed} commands` } : {}),
            });
          }
          // Drift found and not fixed: exit 1, so a script can alert on it.
          if (!report.inSync && !o.fix) process.exitCode = 1;
        } finally {
          await admin.close();
        }
      }),
    );
}
