import { readFileSync, statSync } from "node:fs";
import { request } from "node:https";
import type { Command } from "commander";
import { EVENT_TYPE_FILTER_PATTERN, matchesFilter, type EventStreamFilter, type SecurityEventInput } from "../../audit/index.js";
import { MoatError } from "../../errors.js";
import { configFrom, withApp } from "../context.js";
import { integerIn } from "../parse.js";

/** How far back `moat events tail` looks when the filter is not one exact type. */
const SCAN_BACK = 5_000;
const TYPE_FILTER = new RegExp(EVENT_TYPE_FILTER_PATTERN);

interface Printed extends SecurityEventInput {
  seq?: number;
  time?: string;
}

function line(event: Printed, json: boolean): string {
  if (json) return JSON.stringify(event) + "\n";
  const about = event.subject ? ` ${event.subject}` : "";
  const data = event.data && Object.keys(event.data).length ? ` ${JSON.stringify(event.data)}` : "";
  return `${event.time ?? new Date().toISOString()} ${(event.severity ?? "info").padEnd(8)} ${event.type}${about} (${event.actor ?? "system"})${data}`.replace(/[\u0000-\u0009\u000b-\u001f\u007f]/g, "?") + "\n";
}

function readSecretFile(path: string): string {
  try {
    const stat = statSync(path);
    if (stat.size > 4096) throw new MoatError("VALIDATION_FAILED", `token file ${path} is over 4 KiB`);
    if ((stat.mode & 0o077) !== 0) throw new MoatError("VALIDATION_FAILED", `token file ${path} is readable by group or others; chmod 600 it first`);
    return readFileSync(path, "utf8").trim();
  } catch (error) {
    if (error instanceof MoatError) throw error;
    throw new MoatError("VALIDATION_FAILED", `cannot read token file ${path}: ${(error as Error).message}`);
  }
}

/**
 * Follows /v1/events/stream (server-sent events) until the server ends it (`event: end`: the token was
 * revoked or expired), the connection drops, or SIGINT. Prints each event as it arrives.
 */
function follow(url: URL, token: string, caPem: string, json: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" }, ca: caPem, minVersion: "TLSv1.2" }, (res) => {
      if (res.statusCode !== 200) {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk.slice(0, 2000)));
        res.on("end", () => {
          let problem: { code?: string; detail?: string } = {};
          try {
            problem = JSON.parse(body) as typeof problem;
          } catch {
            // Not problem+json: report the status alone.
          }
          reject(new MoatError("VALIDATION_FAILED", `the event stream answered HTTP ${res.statusCode}${problem.code ? ` ${problem.code}: ${problem.detail ?? ""}` : ""}`));
        });
        return;
      }
      process.stderr.write(`following ${url.origin}${url.pathname} (Ctrl-C to stop)\n`);
      let buffer = "";
      let data: string[] = [];
      let event = "message";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        for (let newline = buffer.indexOf("\n"); newline >= 0; newline = buffer.indexOf("\n")) {
          const raw = buffer.slice(0, newline).replace(/\r$/, "");
          buffer = buffer.slice(newline + 1);
          if (raw === "") {
            if (event === "end") {
              process.stderr.write("the server ended the stream (token revoked or expired)\n");
              req.destroy();
              return resolve();
            }
            if (data.length > 0) {
              try {
                process.stdout.write(line(JSON.parse(data.join("\n")) as Printed, json));
              } catch {
                // A line that is not JSON is not an event; skip it.
              }
            }
            data = [];
            event = "message";
          } else if (raw.startsWith("data:")) data.push(raw.slice(5).replace(/^ /, ""));
          else if (raw.startsWith("event:")) event = raw.slice(6).trim();
          // ":" comments are heartbeats; "id:" is not needed to print.
        }
      });
      res.on("end", () => resolve());
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
    const stop = () => {
      req.destroy();
      resolve();
    };
    process.once("SIGINT", stop);
  });
}

/** `moat events tail`: recent security events from the audit log, then (with -f) the live stream. */
export function register(program: Command): void {
  const events = program.command("events").description("security events: the latest from the audit log, or follow them live");

  events
    .command("tail")
    .description("print the latest security events (oldest first); with -f, then follow /v1/events/stream of a running moat serve")
    .option("-f, --follow", "keep following live events (needs a running server and an API token in --token-file)")
    .option("--type <types>", "comma-separated types, each exact or a prefix (device.*, alert.raised)")
    .option("--device <id>", "only events about this device")
    .option("-n, --lines <n>", "how many past events to print first (0-1000)", integerIn(0, 1000), 20)
    .option("--json", "print one JSON object per line")
    .option("--url <url>", "the API's base URL for -f (default https://127.0.0.1:<apiPort>)")
    .option("--token-file <file>", "file (mode 0600) holding the API token for -f; never on the command line")
    .option("--ca <file>", "PEM CA for the API's certificate (default: this installation's root)")
    .addHelpText("after", "\nExamples:\n  moat events tail --type alert.raised,respond.* -n 50 --json\n  moat events tail -f --device sensor-0042 --token-file ~/.moat-token\n")
    .action(async (o: { follow?: boolean; type?: string; device?: string; lines: number; json?: boolean; url?: string; tokenFile?: string; ca?: string }, command: Command) => {
      if (o.type !== undefined && !TYPE_FILTER.test(o.type)) throw new MoatError("VALIDATION_FAILED", `--type ${JSON.stringify(o.type.slice(0, 100))} is not comma-separated event types (exact, or prefix.*)`);
      if (o.follow && !o.tokenFile) throw new MoatError("VALIDATION_FAILED", "-f follows the server's event stream: pass --token-file FILE with an API token (events:read)");
      const filter: EventStreamFilter = { ...(o.type ? { types: o.type } : {}), ...(o.device ? { device: o.device } : {}) };
      const token = o.follow ? readSecretFile(o.tokenFile!) : "";
      const caFromFile = o.ca ? readFileSync(o.ca, "utf8") : undefined;
      const caPem = await withApp(command, o.follow && !caFromFile ? ["pki"] : [], async (app) => {
        if (o.lines > 0) {
          const exact = o.type && !o.type.includes(",") && !o.type.endsWith(".*") ? o.type : undefined;
          let rows: Printed[];
          if (exact) rows = (await app.audit.list({ type: exact, limit: 1000 })).filter((e) => matchesFilter(e, filter)).slice(0, o.lines).reverse();
          else {
            // Filters the store cannot apply are applied here, over the newest entries.
            const head = await app.audit.headSeq();
            const found: Printed[] = [];
            for (let after = Math.max(0, head - SCAN_BACK); after < head; ) {
              const page = await app.audit.entriesAfter(after, 1000);
              found.push(...page.filter((e) => matchesFilter(e, filter)));
              if (page.length === 0) break;
              after = page[page.length - 1]!.seq;
            }
            rows = found.slice(-o.lines);
          }
          for (const row of rows) process.stdout.write(line(row, o.json === true));
        }
        return o.follow ? (caFromFile ?? (await app.ca.rootPem())) : "";
      });
      if (!o.follow) return;
      const base = new URL(o.url ?? `https://127.0.0.1:${configFrom(command).apiPort}`);
      if (base.protocol !== "https:") throw new MoatError("VALIDATION_FAILED", "--url must be https (the token travels with the request)");
      const url = new URL("/v1/events/stream", base);
      if (o.type) url.searchParams.set("type", o.type);
      if (o.device) url.searchParams.set("device", o.device);
      await follow(url, token, caPem, o.json === true);
    });
}
