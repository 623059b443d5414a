import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { loadClientEnvironment } from "../../config/index.js";
import { MoatError } from "../../errors.js";
import { AdminApi, SCENARIO_NAMES, checkScenario, runSimulation, sdkDeviceFactory, type ScenarioName, type ServerControl, type SimulationSummary } from "../../sim/index.js";
import { configFrom, withApp } from "../context.js";
import type { LocalMoat } from "../local-moat.js";
import { printJson } from "../output.js";
import { durationOption, integerIn } from "../parse.js";
import { ProgressBar } from "../progress-bar.js";

interface SimOptions {
  devices: number;
  rate: number;
  duration: number;
  scenario: ScenarioName;
  prefix: string;
  json?: boolean;
  url?: string;
  mqttUrl?: string;
  ca?: string;
  tokenFile?: string;
  cleanup?: boolean;
  local?: boolean;
  certLifetime?: string;
  concurrency: number;
}

/** Messages per second per device: a positive decimal up to 1000 (0.1 is one message every 10 s). */
function rateOption(text: string): number {
  const value = Number(text);
  if (!/^\d{1,4}(\.\d{1,3})?$/.test(text) || !(value > 0 && value <= 1000)) throw new InvalidArgumentError(`'${text}' is not a rate from 0.001 to 1000 messages per second`);
  return value;
}

function simDuration(text: string): number {
  const ms = durationOption(text);
  if (ms < 1_000 || ms > 86_400_000) throw new InvalidArgumentError(`'${text}' is outside 1s-24h`);
  return ms;
}

function readSetupFile(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (cause) {
    throw new MoatError("SIM_SETUP_MISSING", `cannot read ${what} ${path}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Where the simulator finds a running Moat: the API URL, the admin token (MOAT_TOKEN or a token file,
 * never a flag), the CA bundle (--ca/MOAT_CA, else the installation in the data dir, on the server's
 * own machine) and the MQTT URL (else what GET /v1/info advertises, else the SDK asks it itself).
 */
async function remoteTarget(command: Command, o: SimOptions): Promise<{ url: string; token: string; ca: string; mqttUrl?: string }> {
  const env = loadClientEnvironment();
  const url = o.url ?? env.url;
  if (!url) throw new MoatError("SIM_SETUP_MISSING", "no API URL: pass --url https://host:8443 or set MOAT_URL (or use --local)");
  const token = o.tokenFile ? readSetupFile(o.tokenFile, "the token file").trim() : env.token;
  if (!token) throw new MoatError("SIM_SETUP_MISSING", "no admin token: set MOAT_TOKEN or pass --token-file FILE (a token is never accepted as a flag)");
  const caFile = o.ca ?? env.ca;
  let ca: string;
  if (caFile) ca = readSetupFile(caFile, "the CA bundle");
  else {
    try {
      ca = await withApp(command, ["pki"], (app) => app.ca.chainPem());
    } catch (cause) {
      throw new MoatError("SIM_SETUP_MISSING", `no CA bundle: pass --ca FILE or set MOAT_CA (the data dir ${configFrom(command).dataDir} holds no installation to read it from)`, { cause });
    }
  }
  const explicit = o.mqttUrl ?? env.mqttUrl;
  if (explicit) return { url, token, ca, mqttUrl: explicit };
  const advertised = await new AdminApi({ url, ca, token }).info().then(
    (info) => info.mqttUrl,
    () => undefined,
  );
  return advertised ? { url, token, ca, mqttUrl: advertised } : { url, token, ca };
}

function printSummary(s: SimulationSummary, target: { url: string; mqttUrl?: string }): void {
  const shared = new Set(["runId", "scenario", "devices", "enrolled", "connected", "sent", "received", "denied", "latencyMs", "errorsByCode", "durationMs", "cleanedUp", "interrupted"]);
  const errors = Object.entries(s.errorsByCode);
  const extra = Object.entries(s).filter(([key]) => !shared.has(key));
  const width = Math.max(12, ...extra.map(([key]) => key.length));
  const row = (label: string, value: string) => `  ${label.padEnd(width)} ${value}`;
  const lines = [
    `moat sim: run ${s.runId}, scenario ${s.scenario}, against ${target.url}${target.mqttUrl ? ` (MQTT ${target.mqttUrl})` : ""}`,
    row("devices", `${s.devices} (enrolled ${s.enrolled}, connected ${s.connected})`),
    row("messages", `sent ${s.sent} (acknowledged, QoS 1), received ${s.received}, denied ${s.denied}`),
    row("latency", `p50 ${s.latencyMs.p50 ?? "-"} ms, p99 ${s.latencyMs.p99 ?? "-"} ms (publish to delivery)`),
    row("errors", errors.length === 0 ? "none" : errors.map(([code, n]) => `${code}×${n}`).join(", ")),
    ...extra.map(([key, value]) => row(key, typeof value === "object" && value !== null ? JSON.stringify(value) : String(value))),
    row("took", `${(s.durationMs / 1000).toFixed(1)} s${s.interrupted ? " (interrupted)" : ""}${s.cleanedUp ? "; the run's devices are decommissioned" : "; devices kept (decommission them with --cleanup next time)"}`),
  ];
  process.stdout.write(lines.join("\n") + "\n");
}

/** `moat sim`: a fleet of simulated devices (the device SDK) against a running Moat. */
export function register(program: Command): void {
  program
    .command("sim")
    .description("simulate a fleet of devices (built on the device SDK) against a running Moat and report what happened")
    .option("--devices <n>", "how many devices (1-100000)", integerIn(1, 100_000), 20)
    .option("--rate <msgs>", "telemetry messages per second per device", rateOption, 1)
    .option("--duration <time>", "how long the scenario runs, e.g. 30s, 2m", simDuration, 30_000)
    .addOption(new Option("--scenario <name>", "what the fleet goes through").choices(SCENARIO_NAMES).default("steady"))
    .option("--prefix <text>", "device ids are <prefix><run id>-<n>", "sim-")
    .option("--url <url>", "the Moat API, e.g. https://moat.example:8443 (env MOAT_URL)")
    .option("--mqtt-url <url>", "the broker, e.g. mqtts://moat.example:8883 (env MOAT_MQTT_URL; default: what GET /v1/info advertises)")
    .option("--ca <file>", "Moat's CA bundle, PEM (env MOAT_CA; default: from the installation in the data dir)")
    .option("--token-file <file>", "file holding an admin API token (else env MOAT_TOKEN; never a flag)")
    .option("--cleanup", "decommission the run's devices afterwards")
    .option("--local", "start a throwaway Moat in this process (temporary data dir, free 127.0.0.1 ports) and simulate against it")
    .option("--cert-lifetime <time>", "with --local: device certificate lifetime (pki.certLifetime, e.g. 30s, 10m), so rotation renews automatically")
    .option("--concurrency <n>", "enrollments and connects in flight at once", integerIn(1, 256), 8)
    .option("--json", "print the summary as JSON")
    .addHelpText(
      "after",
      `
Scenarios: ${SCENARIO_NAMES.join(", ")} (see docs/simulator.md).

Examples:
  MOAT_URL=https://127.0.0.1:8443 MOAT_TOKEN=$(cat admin.token) moat sim --devices 50 --duration 1m
  moat sim --url https://moat.example:8443 --token-file admin.token --ca ca.pem --scenario compromise --cleanup
  moat sim --local --scenario outage --devices 100 --json
  moat sim --local --scenario rotation --cert-lifetime 30s --duration 40s
`,
    )
    .action(async (o: SimOptions, command: Command) => {
      const bar = new ProgressBar();
      let local: LocalMoat | undefined;
      const workDir = mkdtempSync(join(tmpdir(), "moat-sim-"));
      // The first Ctrl-C winds the run down (devices closed, --cleanup honoured, summary printed); a second one ends the process.
      const interrupt = new AbortController();
      const onSigint = () => {
        bar.note("moat sim: interrupted; winding down (Ctrl-C again to stop at once)");
        interrupt.abort();
      };
      process.once("SIGINT", onSigint);
      try {
        let target: { url: string; token: string; ca: string; mqttUrl?: string };
        let control: ServerControl = {};
        if (o.local) {
          // Refuse what cannot run before paying for a server.
          checkScenario(o.scenario, o.devices, { restartBroker: async () => undefined, ota: {} as never });
          bar.note("moat sim: starting a throwaway Moat in this process…");
          // Loaded only here: a run against a remote Moat needs none of the server.
          local = await (await import("../local-moat.js")).startLocalMoat(o.certLifetime ? { settings: { "pki.certLifetime": o.certLifetime } } : {});
          target = { url: local.apiUrl, token: local.adminToken, ca: local.ca, mqttUrl: local.mqttUrl };
          control = { restartBroker: local.restartBroker, ota: local.ota };
        } else {
          if (o.certLifetime) throw new MoatError("SIM_OPTIONS_INVALID", "--cert-lifetime applies to --local; a running server has its own pki.certLifetime");
          checkScenario(o.scenario, o.devices, {});
          target = await remoteTarget(command, o);
        }
        const summary = await runSimulation({
          api: new AdminApi({ url: target.url, ca: target.ca, token: target.token }),
          factory: sdkDeviceFactory(),
          server: target.url,
          ca: target.ca,
          ...(target.mqttUrl ? { mqttUrl: target.mqttUrl } : {}),
          prefix: o.prefix,
          size: o.devices,
          workDir,
          concurrency: o.concurrency,
          scenario: o.scenario,
          rate: o.rate,
          durationMs: o.duration,
          cleanup: o.cleanup === true,
          control,
          progress: (phase, done, total) => bar.update(phase, done, total),
          note: (message) => bar.note(message),
          signal: interrupt.signal,
        });
        if (o.json) printJson({ url: target.url, mqttUrl: target.mqttUrl ?? null, ...summary });
        else printSummary(summary, target);
      } finally {
        process.removeListener("SIGINT", onSigint);
        rmSync(workDir, { recursive: true, force: true });
        await local?.close();
      }
    });
}
