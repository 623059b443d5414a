import type { Command } from "commander";
import type { SessionRecord, TakeoverRecord } from "../../sessions/index.js";
import { withApp } from "../context.js";
import { printJson, printTable, type Column } from "../output.js";
import { isoTimeOption, parsePageLimit } from "../parse.js";

const SESSION_COLUMNS: Column<SessionRecord>[] = [
  { header: "device", value: (s) => s.deviceId },
  { header: "address", value: (s) => s.address },
  { header: "method", value: (s) => s.method },
  { header: "credential", value: (s) => s.certSerial ?? s.credentialId },
  { header: "node", value: (s) => s.nodeId.slice(0, 8) },
  { header: "since", value: (s) => s.connectedAt },
];

const TAKEOVER_COLUMNS: Column<TakeoverRecord>[] = [
  { header: "at", value: (t) => t.at },
  { header: "client id", value: (t) => t.clientId },
  { header: "from", value: (t) => t.previousAddress },
  { header: "to", value: (t) => t.address },
];

export function register(program: Command): void {
  const session = program.command("session").description("live MQTT sessions: who is connected now, and client-id takeovers");

  session
    .command("list")
    .description("list live MQTT sessions (of data-plane nodes heard from in the last minute)")
    .option("--device <id>", "only this device")
    .option("--limit <n>", "page size (max 1000)", parsePageLimit, 100)
    .option("--after <session>", "start after this session id (the `next` of the previous page)")
    .option("--json", "print JSON ({count, sessions, next})")
    .addHelpText("after", "\nExample:\n  moat session list --device sensor-0042 --json\n")
    .action(async (o: { device?: string; limit: number; after?: string; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const sessions = await app.sessions.list({ limit: o.limit, ...(o.device ? { deviceId: o.device } : {}), ...(o.after ? { after: o.after } : {}) });
        const next = sessions.length === o.limit ? sessions.at(-1)!.sessionId : null;
        if (o.json) printJson({ count: await app.sessions.count(), sessions, next });
        else {
          printTable(sessions, SESSION_COLUMNS);
          if (next) process.stderr.write(`more: --after ${next}\n`);
        }
      }),
    );

  session
    .command("takeovers")
    .description("list client-id takeovers (a connection that replaced a live one with the same client id), newest first")
    .option("--device <id>", "only this device")
    .option("--since <time>", "only from this date or ISO-8601 time on", isoTimeOption)
    .option("--limit <n>", "how many (max 1000)", parsePageLimit, 100)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat session takeovers --since 2026-01-01T00:00:00Z --json\n")
    .action(async (o: { device?: string; since?: string; limit: number; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const rows = await app.sessions.takeovers({ limit: o.limit, ...(o.device ? { deviceId: o.device } : {}), ...(o.since ? { since: o.since } : {}) });
        if (o.json) printJson(rows);
        else printTable(rows, TAKEOVER_COLUMNS);
      }),
    );
}
