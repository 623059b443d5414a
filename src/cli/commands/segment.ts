import { Command } from "commander";
import { MoatError } from "../../errors.js";
import {
  analyzePolicy,
  buildMatrix,
  checkDevicePlacement,
  compileNftables,
  explainDecision,
  FlowSimulator,
  formatMatrix,
  formatMatrixGrid,
  importMud,
  loadPolicy,
  MAX_MUD_BYTES,
  MAX_POLICY_BYTES,
  mudRulesToYaml,
  parseFlow,
  parseInventoryJson,
  readTextFile,
  writeFileAtomic,
  writeMudIntoPolicy,
  type InventoryDevice,
} from "../../network/index.js";
import { withApp } from "../context.js";
import { printJson, printTable } from "../output.js";

const MAX_INVENTORY_BYTES = 64 * 1024 * 1024;
/** Page size for reading the device registry (the service's maximum). */
const DEVICE_PAGE = 1000;

function readPolicy(file: string): string {
  return readTextFile(file, MAX_POLICY_BYTES, "policy");
}

/** Writes to --out atomically, or to stdout. */
function emit(content: string, out: string | undefined): void {
  if (out) {
    writeFileAtomic(out, content);
    process.stderr.write(`wrote ${out}\n`);
  } else process.stdout.write(content);
}

/** Every device of the registry (optionally one group), page by page. */
async function allDevices(command: Command, group: string | undefined): Promise<InventoryDevice[]> {
  return withApp(command, [], async (app) => {
    const devices: InventoryDevice[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await app.devices.list({ limit: DEVICE_PAGE, ...(after ? { after } : {}), ...(group ? { group } : {}) });
      for (const d of page.devices) devices.push({ id: d.id, attributes: d.attributes, lastSeenAddress: d.lastSeenAddress });
      if (!page.next) return devices;
      after = page.next;
      process.stderr.write(`read ${devices.length} devices…\n`);
    }
  });
}

/** `moat segment …`: VLAN segmentation policies and RFC 8520 MUD profiles. */
export function register(program: Command): void {
  const segment = program
    .command("segment")
    .description("network segmentation: validate, simulate and compile VLAN policies; import MUD profiles")
    .addHelpText("after", "\nExample:\n  moat segment validate examples/segmentation/network-segmentation.yml\n\nSee docs/segmentation.md for the policy format and its semantics.\n");

  segment
    .command("validate <file>")
    .description("check a policy: errors and warnings with line numbers (exit 1 on errors)")
    .option("--json", "print JSON ({file, valid, errors, warnings, diagnostics})")
    .addHelpText("after", "\nExample:\n  moat segment validate network-segmentation.yml --json\n")
    .action((file: string, o: { json?: boolean }) => {
      const analysis = analyzePolicy(readPolicy(file));
      const errors = analysis.diagnostics.filter((d) => d.severity === "error").length;
      const warnings = analysis.diagnostics.length - errors;
      if (o.json) printJson({ file, valid: analysis.valid, errors, warnings, diagnostics: analysis.diagnostics });
      else {
        for (const d of analysis.diagnostics) process.stdout.write(`${file}:${d.line}: ${d.severity} [${d.kind}] ${d.message}\n`);
        const vlans = analysis.policy.vlans.length;
        process.stdout.write(`${analysis.valid ? "valid" : "INVALID"}: ${vlans} VLAN(s), ${errors} error(s), ${warnings} warning(s)\n`);
      }
      if (!analysis.valid) process.exitCode = 1;
    });

  segment
    .command("check <file>")
    .description("simulate one connection: allow or deny, and the rule that decided")
    .requiredOption("--from <ip>", "address opening the connection")
    .requiredOption("--to <ip>", "address connected to")
    .requiredOption("--port <n>", "destination port")
    .option("--proto <proto>", "tcp or udp", "tcp")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat segment check network-segmentation.yml --from 192.168.10.5 --to 192.168.40.10 --port 8883\n")
    .action((file: string, o: { from: string; to: string; port: string; proto: string; json?: boolean }) => {
      const flow = parseFlow(o);
      const decision = new FlowSimulator(loadPolicy(readPolicy(file), file)).decide(flow);
      const reason = explainDecision(decision, flow);
      if (o.json) printJson({ from: o.from, to: o.to, port: flow.port, proto: flow.proto, ...decision, reason });
      else process.stdout.write(`${decision.decision.toUpperCase()} ${o.from} -> ${o.to}:${flow.port}/${flow.proto}: ${reason}\n`);
    });

  segment
    .command("matrix <file>")
    .description("which VLAN or network may open connections to which, on which ports")
    .option("--list", "one line per pair that may connect, instead of a grid")
    .option("--json", "print JSON ({endpoints, cells})")
    .addHelpText("after", "\nExample:\n  moat segment matrix network-segmentation.yml --list\n")
    .action((file: string, o: { list?: boolean; json?: boolean }) => {
      const matrix = buildMatrix(loadPolicy(readPolicy(file), file));
      if (o.json) printJson(matrix);
      else process.stdout.write(o.list ? formatMatrix(matrix) : formatMatrixGrid(matrix));
    });

  segment
    .command("compile <file>")
    .description("compile a valid policy to an nftables ruleset for the router (load it with nft -f)")
    .option("--target <target>", "output format (nftables)", "nftables")
    .option("--out <file>", "write here (atomically) instead of stdout")
    .addHelpText("after", "\nExample:\n  moat segment compile network-segmentation.yml --target nftables --out moat.nft && nft -c -f moat.nft\n")
    .action((file: string, o: { target: string; out?: string }) => {
      if (o.target !== "nftables") throw new MoatError("NETWORK_TARGET_UNSUPPORTED", `--target "${o.target}" is not supported (nftables)`);
      emit(compileNftables(loadPolicy(readPolicy(file), file)), o.out);
    });

  const mud = segment
    .command("mud")
    .description("RFC 8520 Manufacturer Usage Description profiles")
    .addHelpText("after", "\nExample:\n  moat segment mud import thermostat.mud.json --group thermostats --json\n");
  mud
    .command("import <file>")
    .description("turn a MUD file's access lists into rules for the VLAN holding a group's devices")
    .requiredOption("--group <vlan>", "the group: the name of the VLAN its devices live in")
    .option("--policy <file>", "write the rules into this policy as the VLAN's firewall_rules (validated first)")
    .option("--out <file>", "write here (atomically) instead of stdout")
    .option("--json", "print JSON ({group, mudUrl, rules, warnings, notes})")
    .addHelpText(
      "after",
      "\nExamples:\n  moat segment mud import thermostat.mud.json --group thermostats\n  moat segment mud import thermostat.mud.json --group thermostats --policy site.yml --out site.yml\n",
    )
    .action((file: string, o: { group: string; policy?: string; out?: string; json?: boolean }) => {
      const imported = importMud(readTextFile(file, MAX_MUD_BYTES, "MUD file"), o.group);
      const output = o.policy ? writeMudIntoPolicy(readPolicy(o.policy), imported) : mudRulesToYaml(imported);
      for (const w of imported.warnings) process.stderr.write(`warning: ${w.path}: ${w.message}\n`);
      if (o.json) {
        if (o.out) writeFileAtomic(o.out, output);
        printJson(imported);
      } else emit(output, o.out);
    });

  segment
    .command("devices <file>")
    .description("place devices in VLANs (attribute vlan=<id|name>, else by address) and flag those seen outside their subnet")
    .option("--group <group>", "only devices of this group")
    .option("--inventory <file.json>", "read devices from a JSON export ([{id, attributes, lastSeenAddress}]) instead of the registry")
    .option("--flagged", "list only flagged devices")
    .option("--json", "print JSON ({devices, flagged})")
    .addHelpText("after", "\nExample:\n  moat segment devices network-segmentation.yml --flagged\n")
    .action(async (file: string, o: { group?: string; inventory?: string; flagged?: boolean; json?: boolean }, command: Command) => {
      const policy = loadPolicy(readPolicy(file), file);
      const devices = o.inventory ? parseInventoryJson(readTextFile(o.inventory, MAX_INVENTORY_BYTES, "inventory")) : await allDevices(command, o.group);
      const placements = checkDevicePlacement(policy, devices);
      const shown = o.flagged ? placements.filter((p) => p.flagged) : placements;
      const flagged = placements.filter((p) => p.flagged).length;
      if (o.json) printJson({ devices: shown, flagged });
      else {
        printTable(shown, [
          { header: "device", value: (p) => p.id },
          { header: "vlan", value: (p) => (p.vlan ? `${p.vlan.id} ${p.vlan.name}` : null) },
          { header: "by", value: (p) => p.placedBy },
          { header: "last seen", value: (p) => p.lastSeenAddress },
          { header: "status", value: (p) => (p.flagged ? `FLAG ${p.status}` : p.status) },
          { header: "detail", value: (p) => p.message },
        ]);
        process.stderr.write(`${placements.length} device(s), ${flagged} flagged\n`);
      }
    });
}
