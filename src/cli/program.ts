import { Command } from "commander";

export { VERSION } from "../lib/version.js";
import { VERSION } from "../lib/version.js";

/** A top-level command and the module that registers it (and its subcommands). */
export interface CommandGroup {
  readonly name: string;
  /** What `moat --help` lists; the module's own description must say the same (test/cli/program.test.ts). */
  readonly description: string;
  load(): Promise<{ register(program: Command): void }>;
}

/**
 * Every top-level command, in the order `moat --help` lists them. A group's module (and with it the
 * domains it uses) is imported only when that group runs, so `moat --version` and `moat --help` load
 * no domain at all. A new group is one line here plus `src/cli/commands/<group>.ts` exporting `register`.
 */
const system = () => import("./commands/system.js");

export const COMMAND_GROUPS: readonly CommandGroup[] = [
  { name: "init", description: "create the data dir, KEK, database, CA hierarchy, server certificate and the first admin token", load: system },
  { name: "serve", description: "run the REST API, PKI endpoints and MQTT broker until SIGINT/SIGTERM", load: system },
  { name: "start", description: "moat init if the data dir is new, then moat serve (what `npm start` runs)", load: system },
  { name: "migrate", description: "apply pending database migrations (with --status: only show where the schema stands)", load: system },
  { name: "device", description: "the device registry", load: () => import("./commands/device.js") },
  {
    name: "group",
    description: "device groups and their settings: allowed source networks, silence window, minimum firmware security version",
    load: () => import("./commands/group.js"),
  },
  { name: "detect", description: "behaviour detection: rules (built-in and YAML), and replaying recorded events through them", load: () => import("./commands/detect.js") },
  { name: "alerts", description: "alerts raised by detection: list, show, acknowledge, resolve", load: () => import("./commands/alerts.js") },
  { name: "token", description: "operator API tokens", load: () => import("./commands/token.js") },
  { name: "audit", description: "the tamper-evident security event log, its signed checkpoints and proofs", load: () => import("./commands/audit.js") },
  { name: "ca", description: "Moat's certificate authorities", load: () => import("./commands/ca.js") },
  { name: "cert", description: "device certificates: issue, list, show, revoke, rotate", load: () => import("./commands/cert.js") },
  { name: "enroll-token", description: "one-time EST enrollment tokens (stored hashed, single use, expiring)", load: () => import("./commands/enroll-token.js") },
  { name: "crl", description: "print the current CRL (PEM label X509 CRL; re-signed first if due)", load: () => import("./commands/crl.js") },
  {
    name: "scan",
    description: "scan hosts for open ports, plaintext protocols, default logins, anonymous MQTT and weak TLS (loopback only unless allowed)",
    load: () => import("./commands/scan.js"),
  },
  { name: "role", description: "roles: allow/deny rules for devices (MQTT topics) and operators (API permissions)", load: () => import("./commands/role.js") },
  { name: "policy", description: "simulate decisions and lint roles", load: () => import("./commands/policy.js") },
  { name: "firmware", description: "firmware signing keys, signed manifests, verification and the TUF repository", load: () => import("./commands/firmware.js") },
  { name: "ota", description: "staged over-the-air update campaigns", load: () => import("./commands/ota.js") },
  { name: "segment", description: "network segmentation: validate, simulate and compile VLAN policies; import MUD profiles", load: () => import("./commands/segment.js") },
  { name: "keys", description: "key-encryption keys: status, rotation, retirement", load: () => import("./commands/keys.js") },
  { name: "data", description: "encrypt and decrypt application data with Moat's envelope encryption", load: () => import("./commands/data.js") },
  { name: "e2e", description: "end-to-end payload encryption with COSE_Encrypt0 (the broker only sees ciphertext)", load: () => import("./commands/e2e.js") },
  { name: "sim", description: "simulate a fleet of devices (built on the device SDK) against a running Moat and report what happened", load: () => import("./commands/sim.js") },
  { name: "demo", description: "start a throwaway Moat in this process and walk a small fleet through it, narrated", load: () => import("./commands/demo.js") },
  { name: "posture", description: "posture checks: what is misconfigured now (certificates, keys, roles, sessions, listeners, scans)", load: () => import("./commands/posture.js") },
  {
    name: "compliance",
    description: "compliance evidence: control catalogues, signed reports (ETSI EN 303 645, NIST IR 8259A, IEC 62443-4-2, CRA, PSTI), attestations",
    load: () => import("./commands/compliance.js"),
  },
  { name: "session", description: "live MQTT sessions: who is connected now, and client-id takeovers", load: () => import("./commands/session.js") },
  { name: "playbook", description: "response playbooks: which actions answer which detection rule, their actions and undo", load: () => import("./commands/playbook.js") },
  {
    name: "notify",
    description: "notification targets (signed webhooks, syslog over TLS, the MQTT alert topic), deliveries and dead letters",
    load: () => import("./commands/notify.js"),
  },
  {
    name: "incident",
    description: "incidents: group alerts and response actions, with a timeline from the audit log (JSON or Markdown)",
    load: () => import("./commands/incident.js"),
  },
  { name: "events", description: "security events: the latest from the audit log, or follow them live", load: () => import("./commands/events.js") },
  { name: "mosquitto", description: "Mosquitto as the data plane: set up its directory, check and fix drift", load: () => import("./commands/mosquitto.js") },
];

/** Global options that take a value: their value is not a command name. */
const GLOBAL_VALUE_OPTIONS = new Set(["--data-dir", "--database-url", "--log-level"]);

/** The top-level command named on the command line (`moat help X` names X), if any. */
export function commandNameOf(args: readonly string[]): string | undefined {
  let helpAsked = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (GLOBAL_VALUE_OPTIONS.has(arg)) {
      i++;
      continue;
    }
    if (arg === "--") return args[i + 1];
    if (arg.startsWith("-")) continue;
    if (arg === "help" && !helpAsked) {
      helpAsked = true;
      continue;
    }
    return arg;
  }
  return undefined;
}

/**
 * The `moat` program for one command line (`args` without node and the script): the named group is
 * registered in full, every other group as a name and a description for the help listing.
 */
export async function buildProgram(args: readonly string[]): Promise<Command> {
  const program = new Command("moat")
    .description("Moat: a self-hosted security control plane for IoT fleets")
    .version(VERSION)
    .option("--data-dir <dir>", "data directory (env MOAT_DATA_DIR; default ./moat-data)")
    .option("--database-url <url>", "PostgreSQL URL (env MOAT_DATABASE_URL; default SQLite in the data dir)")
    .option("--log-level <level>", "log level for servers (env MOAT_LOG_LEVEL)")
    .exitOverride()
    .showHelpAfterError()
    .addHelpText("after", "\nExamples:\n  moat init --trust-domain fleet.example.com\n  moat serve\n  moat device add sensor-1 --group boilers\n");
  const name = commandNameOf(args);
  const named = COMMAND_GROUPS.find((group) => group.name === name);
  const loaded = named ? await named.load() : undefined;
  // In table order; the named group's module registers its own commands (a module may register several).
  for (const group of COMMAND_GROUPS) {
    if (program.commands.some((command) => command.name() === group.name)) continue;
    if (named && group.load === named.load) loaded!.register(program);
    else program.command(group.name).description(group.description);
  }
  return program;
}
