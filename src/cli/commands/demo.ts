import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { AdminApi, Fleet, runDemo, sdkDeviceFactory, type DemoFacts } from "../../sim/index.js";
import { startLocalMoat, type LocalMoat } from "../local-moat.js";
import { integerIn } from "../parse.js";
import { ProgressBar } from "../progress-bar.js";

function out(line = ""): void {
  process.stdout.write(line + "\n");
}

/** What went wrong in the walk, in words; empty when everything showed what it should. */
function problemsOf(facts: DemoFacts, size: number): string[] {
  const problems: string[] = [];
  if (facts.enrolled !== size || facts.connected !== size) problems.push(`only ${facts.enrolled} of ${size} devices enrolled and ${facts.connected} connected`);
  if (facts.telemetry.received < facts.telemetry.sent) problems.push(`${facts.telemetry.sent - facts.telemetry.received} telemetry messages were not delivered`);
  if (facts.e2e.plaintextSeenByBroker || facts.e2e.opened !== facts.e2e.sealed || !facts.e2e.replayRefused) problems.push("the encrypted payloads did not behave as they should");
  if (!facts.compromise.honestDevicesOk || facts.compromise.revocationToDisconnectMs === null || !facts.compromise.stopCode) problems.push("the compromised device was not cut off cleanly");
  if (facts.ota && facts.ota.status !== "completed") problems.push(`the OTA campaign ended ${facts.ota.status}`);
  return problems;
}

function lookFurther(local: LocalMoat, tokenFile: string, caFile: string): void {
  out("Look around (this Moat runs until Ctrl-C; its data dir is removed then):");
  out(`  API          ${local.apiUrl}   (OpenAPI: ${local.apiUrl}/docs)`);
  out(`  MQTT         ${local.mqttUrl}`);
  out(`  admin token  ${local.adminToken}   (also in ${tokenFile}, mode 0600)`);
  out(`  CA bundle    ${caFile}`);
  out(`  data dir     ${local.dataDir}`);
  out("In another terminal:");
  out(`  export MOAT_DATA_DIR=${local.dataDir}`);
  out("  moat device list");
  out("  moat audit list --type acl.denied");
  out("  moat ota list");
  out(`  curl --cacert ${caFile} -H "Authorization: Bearer $(cat ${tokenFile})" ${local.apiUrl}/v1/devices`);
  out(`  MOAT_URL=${local.apiUrl} MOAT_TOKEN=$(cat ${tokenFile}) MOAT_CA=${caFile} moat sim --devices 50 --scenario compromise`);
}

/** `moat demo`: a throwaway Moat in this process and a small narrated fleet going through it. */
export function register(program: Command): void {
  program
    .command("demo")
    .description("start a throwaway Moat in this process and walk a small fleet through it, narrated")
    .option("--quick", "the short version: walk through once, then stop and clean up")
    .option("--devices <n>", "fleet size (4-200)", integerIn(4, 200), 20)
    .addHelpText(
      "after",
      `
Binds free ports on 127.0.0.1, uses a temporary data dir, and ignores MOAT_URL, MOAT_TOKEN, MOAT_CA and
MOAT_DATA_DIR. Without --quick it stays up after the walk until Ctrl-C, so you can look around.

Examples:
  moat demo
  moat demo --quick
`,
    )
    .action(async (o: { quick?: boolean; devices: number }) => {
      const bar = new ProgressBar();
      out("moat demo: starting a throwaway Moat in this process (temporary data dir, free ports on 127.0.0.1)…");
      const local = await startLocalMoat({ trustDomain: "demo.moat" });
      let fleet: Fleet | undefined;
      try {
        const tokenFile = join(local.dataDir, "admin.token");
        const caFile = join(local.dataDir, "ca.pem");
        writeFileSync(tokenFile, local.adminToken + "\n", { mode: 0o600 });
        writeFileSync(caFile, local.ca);
        out(`  API ${local.apiUrl}, MQTT ${local.mqttUrl}, PKI ${local.pkiUrl}; root and issuing CA created`);
        out("");
        fleet = new Fleet({
          api: new AdminApi({ url: local.apiUrl, ca: local.ca, token: local.adminToken }),
          factory: sdkDeviceFactory(),
          server: local.apiUrl,
          ca: local.ca,
          mqttUrl: local.mqttUrl,
          prefix: "demo-",
          size: o.devices,
          workDir: join(local.dataDir, "devices"),
          progress: (phase, done, total) => bar.update(phase, done, total),
        });
        const facts = await runDemo(fleet, { ota: local.ota }, (line) => out(line), { telemetryMs: o.quick ? 3_000 : 8_000 });
        out("");
        const problems = problemsOf(facts, o.devices);
        if (problems.length > 0) {
          for (const problem of problems) out(`Something did not go as it should: ${problem}`);
          process.exitCode = 1;
        } else out(`Done: the whole walk went as it should (audit log entries written: see moat audit list).`);
        out("");
        if (o.quick) {
          out("That was the short version; `moat demo` (without --quick) keeps this Moat up so you can look around.");
          return;
        }
        // The fleet keeps publishing slowly so there is something to look at.
        fleet.startTelemetry(0.2);
        lookFurther(local, tokenFile, caFile);
        await new Promise<void>((resolve) => {
          process.once("SIGINT", () => resolve());
          process.once("SIGTERM", () => resolve());
        });
        process.stderr.write("\nmoat demo: stopping the fleet and the servers, removing the data dir…\n");
      } finally {
        await fleet?.stop(false).catch(() => undefined);
        await local.close();
      }
      process.stderr.write("moat demo: stopped\n");
    });
}
