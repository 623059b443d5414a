import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import { MoatError } from "../../errors.js";
import { summarizeCampaign, type Campaign } from "../../firmware/index.js";
import { cliActor, withApp } from "../context.js";
import { printJson, printRecord, printTable, progress } from "../output.js";
import { parsePageLimit } from "../parse.js";

function summary(campaign: Campaign) {
  const s = summarizeCampaign(campaign);
  return {
    id: campaign.id,
    group: campaign.group,
    status: campaign.status,
    pauseReason: campaign.pauseReason ?? null,
    version: campaign.release.version,
    securityVersion: campaign.release.securityVersion,
    stages: campaign.stages,
    stage: campaign.stage,
    stagePercent: s.stagePercent,
    maxFailureRate: campaign.maxFailureRate,
    failureRate: s.failureRate,
    counts: s.counts,
    createdAt: campaign.createdAt,
    updatedAt: campaign.updatedAt,
  };
}

function show(campaign: Campaign, json?: boolean, withDevices = false): void {
  if (json) printJson(withDevices ? { ...summary(campaign), release: campaign.release, devices: campaign.devices } : summary(campaign));
  else {
    const s = summary(campaign);
    printRecord({
      ...s,
      stages: s.stages.join(","),
      stage: `${s.stage + 1}/${s.stages.length} (${s.stagePercent}%)`,
      failureRate: `${s.failureRate}% (max ${s.maxFailureRate}%)`,
      counts: Object.entries(s.counts).filter(([, n]) => n > 0).map(([k, n]) => `${k}=${n}`).join(" "),
    });
  }
}

/** `moat ota …`: staged OTA campaigns. */
export function register(program: Command): void {
  const ota = program.command("ota").description("staged over-the-air update campaigns");

  ota
    .command("release <image>")
    .description("verify, publish to TUF and start a staged campaign to a device group")
    .requiredOption("--manifest <file>", "signed manifest of the image")
    .requiredOption("--group <group>", "device group to update (active devices)")
    .option("--stages <list>", "cumulative percentages, ending at 100", "5,25,100")
    .option("--max-failure-rate <rate>", "pause when failures pass this share of the opened devices", "5%")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat ota release fw.bin --manifest fw.manifest.json --group boilers --stages 5,25,100 --max-failure-rate 5%\n")
    .action(async (image: string, o: { manifest: string; group: string; stages: string; maxFailureRate: string; json?: boolean }, command: Command) =>
      withApp(command, ["firmware"], async (app) => {
        let manifest: string;
        try {
          manifest = readFileSync(o.manifest, "utf8");
        } catch (cause) {
          throw new MoatError("VALIDATION_FAILED", `cannot read the manifest ${o.manifest}`, { cause });
        }
        progress(`verifying ${image} against its manifest…`);
        const campaign = await app.firmware.campaigns.release({ image, manifest, group: o.group, stages: o.stages, maxFailureRate: o.maxFailureRate, actor: cliActor() });
        show(campaign, o.json);
      }),
    );

  ota
    .command("list")
    .description("list campaigns, newest first")
    .addOption(new Option("--status <status>", "only this status").choices(["running", "paused", "aborted", "completed"]))
    .option("--limit <n>", "how many, newest first (max 1000)", parsePageLimit, 100)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat ota list --status running --json\n")
    .action(async (o: { status?: string; limit: number; json?: boolean }, command: Command) =>
      withApp(command, ["firmware"], async (app) => {
        const campaigns = (await app.firmware.campaigns.list({ ...(o.status ? { status: o.status } : {}), limit: o.limit })).map(summary);
        if (o.json) printJson(campaigns);
        else
          printTable(campaigns, [
            { header: "id", value: (c) => c.id },
            { header: "group", value: (c) => c.group },
            { header: "version", value: (c) => c.version },
            { header: "status", value: (c) => c.status },
            { header: "stage", value: (c) => `${c.stagePercent}%` },
            { header: "booted", value: (c) => c.counts.booted },
            { header: "failed", value: (c) => c.counts.failed + c.counts["rolled-back"] },
          ]);
      }),
    );

  ota
    .command("status <id>")
    .description("a campaign's stage, failure rate and device counts")
    .option("--devices", "include every device's status (with --json)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat ota status ota-3f9a1c2b4d5e --json\n")
    .action(async (id: string, o: { devices?: boolean; json?: boolean }, command: Command) =>
      withApp(command, ["firmware"], async (app) => show(await app.firmware.campaigns.get(id), o.json, o.devices)),
    );

  for (const [verb, what] of [
    ["pause", "stop opening new stages (devices already told may finish)"],
    ["resume", "continue; failures so far count as accepted"],
    ["abort", "end the campaign and tell unfinished devices to stop"],
  ] as const)
    ota
      .command(`${verb} <id>`)
      .description(what)
      .option("--json", "print JSON")
      .addHelpText("after", `\nExample:\n  moat ota ${verb} ota-3f9a1c2b4d5e\n`)
      .action(async (id: string, o: { json?: boolean }, command: Command) =>
        withApp(command, ["firmware"], async (app) => show(await app.firmware.campaigns[verb](id, cliActor()), o.json)),
      );

  ota
    .command("report <id> <device> <status>")
    .description("record a device's status report by hand (what the broker does for devices/{id}/status messages)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat ota report ota-3f9a1c2b4d5e sensor-0042 failed:FIRMWARE_DIGEST_MISMATCH\n")
    .action(async (id: string, device: string, status: string, o: { json?: boolean }, command: Command) =>
      withApp(command, ["firmware"], async (app) => show(await app.firmware.campaigns.report(id, device, status), o.json)),
    );
}
