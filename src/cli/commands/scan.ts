import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import { MoatError } from "../../errors.js";
import { writeFileAtomicSync } from "../../lib/atomic-file.js";
import { formatScanTable, runScan, runScope, SEVERITY_ORDER, toSarif, toScanResult, type ScanOptions, type ScanProgress, type ScanResult, type ScanRunSummary, type Severity } from "../../scanner/index.js";
import { cliActor, configFrom, withApp } from "../context.js";
import { printJson, printTable } from "../output.js";
import { collect, durationOption, integerIn, parsePageLimit } from "../parse.js";

interface ScanFlags {
  ports: string;
  allow: string[];
  concurrency?: number;
  rate?: number;
  /** Milliseconds. */
  timeLimit?: number;
  portTimeout?: number;
  probeTimeout?: number;
  bannerWait?: number;
  maxAttempts?: number;
  credentials: boolean;
  services: boolean;
  ca: string[];
  store: boolean;
  json?: boolean;
  sarif?: boolean;
  out?: string;
  failOn?: Severity;
  quiet?: boolean;
}

interface ReportFlags {
  json?: boolean;
  sarif?: boolean;
  out?: string;
}

function rootOf(command: Command): Command {
  let root = command;
  while (root.parent) root = root.parent;
  return root;
}

/** Progress on stderr: a redrawn bar on a terminal, a line per 10 % otherwise. */
function progressReporter(quiet: boolean): ((p: ScanProgress) => void) | undefined {
  if (quiet) return undefined;
  const tty = process.stderr.isTTY === true;
  let lastPhase = "";
  let lastDraw = 0;
  let lastDecile = -1;
  return ({ phase, done, total }) => {
    const fraction = total === 0 ? 1 : done / total;
    if (tty) {
      const now = Date.now();
      if (phase === lastPhase && done < total && now - lastDraw < 100) return;
      if (phase !== lastPhase && lastPhase) process.stderr.write("\n");
      lastDraw = now;
      lastPhase = phase;
      const width = 30;
      const filled = Math.round(fraction * width);
      process.stderr.write(`\r${phase.padEnd(11)} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total}`);
      if (done === total) {
        process.stderr.write("\n");
        lastPhase = "";
      }
      return;
    }
    const decile = Math.floor(fraction * 10);
    if (phase !== lastPhase) lastDecile = -1;
    lastPhase = phase;
    if (decile === lastDecile) return;
    lastDecile = decile;
    process.stderr.write(`scan: ${phase} ${done}/${total} (${decile * 10}%)\n`);
  };
}

/** Writes the report to --out (atomically, mode 0600: it may quote a default password) or to stdout. */
function emit(text: string, out: string | undefined): void {
  if (!out) {
    process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
    return;
  }
  writeFileAtomicSync(out, text.endsWith("\n") ? text : `${text}\n`);
  process.stderr.write(`report written to ${out}\n`);
}

function report(result: ScanResult, flags: ReportFlags, version: string, extra: Record<string, unknown> = {}): void {
  if (flags.json && flags.sarif) throw new InvalidArgumentError("choose one of --json and --sarif");
  if (flags.sarif) emit(JSON.stringify(toSarif(result, version), null, 2), flags.out);
  else if (flags.json) emit(JSON.stringify({ ...extra, ...result }, null, 2), flags.out);
  else emit(formatScanTable(result), flags.out);
}

function readTrustAnchors(files: readonly string[]): string[] {
  return files.map((file) => {
    let pem: string;
    try {
      pem = readFileSync(file, "utf8");
    } catch (error) {
      throw new MoatError("SCAN_OPTIONS_INVALID", `--ca ${file} cannot be read`, { cause: error });
    }
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new MoatError("SCAN_OPTIONS_INVALID", `--ca ${file} holds no PEM certificate`);
    return pem;
  });
}

const SUMMARY_COLUMNS = [
  { header: "id", value: (r: ScanRunSummary) => r.id },
  { header: "started", value: (r: ScanRunSummary) => r.startedAt },
  { header: "status", value: (r: ScanRunSummary) => r.status },
  { header: "targets", value: (r: ScanRunSummary) => r.targets.join(" ") },
  { header: "ports", value: (r: ScanRunSummary) => r.portSpec },
  { header: "open", value: (r: ScanRunSummary) => r.openPorts },
  { header: "crit/high/med/low", value: (r: ScanRunSummary) => `${r.counts.critical}/${r.counts.high}/${r.counts.medium}/${r.counts.low}` },
  { header: "actor", value: (r: ScanRunSummary) => r.actor },
];

/** `moat scan …`: scan targets inside the allowed scope, and list or show stored runs. */
export function register(program: Command): void {
  const scan = program
    .command("scan")
    .description("scan hosts for open ports, plaintext protocols, default logins, anonymous MQTT and weak TLS (loopback only unless allowed)")
    .argument("[targets...]", "IP addresses, host names or CIDR blocks (each at most a /16)")
    .option("--ports <spec>", "ports: 1-1000, iot, lists and ranges, /udp suffix (e.g. 1-1024,8883,5683/udp)", "1-1000")
    .option("--allow <cidr>", "also allow this block for this run (repeatable; adds to scanner.allowedTargets)", collect, [])
    .option("--concurrency <n>", "connections open at once, 1-4096 (default 256)", integerIn(1, 4096))
    .option("--rate <n>", "new connections per second, 1-1000000 (default 5000)", integerIn(1, 1_000_000))
    .option("--time-limit <duration>", "overall limit, e.g. 90s or 15m (default 15m)", durationOption)
    .option("--port-timeout <ms>", "connect timeout per port, 50-60000 (default 1500)", integerIn(50, 60_000))
    .option("--probe-timeout <ms>", "wait for answers to probes, 100-60000 (default 3000)", integerIn(100, 60_000))
    .option("--banner-wait <ms>", "wait for a service to speak first, 0-30000 (default 1500)", integerIn(0, 30_000))
    .option("--max-attempts <n>", "login attempts per service, control attempt included, 1-50 (default 10)", integerIn(1, 50))
    .option("--no-credentials", "do not try default credentials")
    .option("--no-services", "open ports only: no service detection and no checks")
    .option("--ca <file>", "extra trust anchor (PEM) for certificate checks (repeatable)", collect, [])
    .option("--no-store", "do not store the run (no data directory needed, e.g. in CI)")
    .option("--json", "print the result as JSON")
    .option("--sarif", "print SARIF 2.1.0 for CI pipelines")
    .option("--out <file>", "write the report to a file (mode 0600) instead of stdout")
    .addOption(new Option("--fail-on <severity>", "exit 1 when a finding is this severe or worse").choices(["critical", "high", "medium", "low", "info"]))
    .option("--quiet", "no progress on stderr")
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        "  moat scan 127.0.0.1 --ports iot",
        "  moat scan camera.lab 10.20.0.0/24 --allow 10.20.0.0/24 --ports 1-1024,5683/udp --sarif --out scan.sarif",
        "  moat scan list",
        "  moat scan show scan-0123456789abcdef --json",
        "",
        "Only addresses inside scanner.allowedTargets (default 127.0.0.0/8 and ::1/128) and --allow blocks",
        "are scanned; anything else is refused before a packet is sent. Scan only networks you may test.",
        "",
      ].join("\n"),
    )
    .action(async (targets: string[], o: ScanFlags, command: Command) => {
      if (targets.length === 0) {
        command.error("error: name at least one target, e.g. moat scan 127.0.0.1 (or use moat scan list|show)", { exitCode: 2, code: "moat.scan.noTarget" });
      }
      const options: Omit<ScanOptions, "allow"> = {
        targets,
        ports: o.ports,
        ...(o.concurrency !== undefined ? { concurrency: o.concurrency } : {}),
        ...(o.rate !== undefined ? { ratePerSecond: o.rate } : {}),
        ...(o.timeLimit !== undefined ? { timeLimitMs: o.timeLimit } : {}),
        ...(o.portTimeout !== undefined ? { portTimeoutMs: o.portTimeout } : {}),
        ...(o.probeTimeout !== undefined ? { probeTimeoutMs: o.probeTimeout } : {}),
        ...(o.bannerWait !== undefined ? { bannerWaitMs: o.bannerWait } : {}),
        ...(o.maxAttempts !== undefined ? { maxCredentialAttempts: o.maxAttempts } : {}),
        credentials: o.credentials,
        detectServices: o.services,
        trustedCa: readTrustAnchors(o.ca),
      };
      const onProgress = progressReporter(o.quiet === true);
      const interrupt = new AbortController();
      const onSigint = () => interrupt.abort();
      process.once("SIGINT", onSigint);
      const version = rootOf(command).version() ?? "0.0.0";
      let result: ScanResult;
      let id: string | undefined;
      try {
        const run = { ...options, signal: interrupt.signal, ...(onProgress ? { onProgress } : {}) };
        if (o.store) {
          const stored = await withApp(command, ["scans"], (app) => app.scans.run({ ...run, allow: o.allow, actor: cliActor() }));
          result = toScanResult(stored);
          id = stored.id;
        } else {
          const config = configFrom(command);
          result = await runScan({ ...run, allow: runScope(config["scanner.allowedTargets"], o.allow) });
        }
      } finally {
        process.removeListener("SIGINT", onSigint);
      }
      report(result, o, version, id ? { id } : {});
      if (id && !o.json && !o.sarif) process.stderr.write(`stored as ${id} (moat scan show ${id})\n`);
      if (result.status !== "completed") {
        process.stderr.write(`scan ${result.status}: results are partial\n`);
        process.exitCode = 1;
      }
      if (o.failOn) {
        const threshold = SEVERITY_ORDER.indexOf(o.failOn);
        if (result.findings.some((f) => SEVERITY_ORDER.indexOf(f.severity) <= threshold)) process.exitCode = 1;
      }
    });

  scan
    .command("list")
    .description("list stored scan runs, newest first")
    .option("--limit <n>", "how many, newest first (max 1000)", parsePageLimit, 50)
    .option("--device <id>", "only runs with findings for this device")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat scan list --device gateway-7 --json\n")
    .action(async (_o: unknown, command: Command) =>
      withApp(command, ["scans"], async (app) => {
        // The parent `scan` also declares --json/--sarif/--out, and commander hands them to whichever parses first.
        const o = command.optsWithGlobals<{ limit: number; device?: string; json?: boolean }>();
        const runs = await app.scans.list({ limit: o.limit, ...(o.device ? { deviceId: o.device } : {}) });
        if (o.json) printJson(runs);
        else printTable(runs, SUMMARY_COLUMNS);
      }),
    );

  scan
    .command("show <id>")
    .description("show one stored scan run with its findings")
    .option("--json", "print JSON (findings carry the linked device id)")
    .option("--sarif", "print SARIF 2.1.0")
    .option("--out <file>", "write the report to a file (mode 0600) instead of stdout")
    .addHelpText("after", "\nExample:\n  moat scan show scan-0123456789abcdef --sarif --out scan.sarif\n")
    .action(async (id: string, _o: unknown, command: Command) =>
      withApp(command, ["scans"], async (app) => {
        const o = command.optsWithGlobals<ReportFlags>();
        const stored = await app.scans.get(id);
        if (o.json) {
          if (o.sarif) throw new InvalidArgumentError("choose one of --json and --sarif");
          emit(JSON.stringify(stored, null, 2), o.out);
        } else {
          report(toScanResult(stored), o, rootOf(command).version() ?? "0.0.0");
        }
      }),
    );
}
