import { readFileSync, statSync } from "node:fs";
import { Command, Option } from "commander";
import { MoatError } from "../../errors.js";
import { SEVERITIES, type DeliveryRecord, type NotifyTargetView } from "../../respond/index.js";
import { cliActor, withApp } from "../context.js";
import { printJson, printRecord, printTable, type Column } from "../output.js";
import { integerIn, parsePageLimit, parsePort } from "../parse.js";

const TARGET_COLUMNS: Column<NotifyTargetView>[] = [
  { header: "name", value: (t) => t.name },
  { header: "kind", value: (t) => t.kind },
  { header: "where", value: (t) => (t.kind === "webhook" ? t.config.url : t.kind === "syslog" ? `${String(t.config.transport)}://${String(t.config.host)}:${String(t.config.port)}` : `${String(t.config.prefix)}/<severity>`) },
  { header: "min severity", value: (t) => t.minSeverity },
  { header: "created", value: (t) => t.createdAt },
];

const DELIVERY_COLUMNS: Column<DeliveryRecord>[] = [
  { header: "id", value: (d) => d.id },
  { header: "target", value: (d) => d.target },
  { header: "event", value: (d) => d.eventType },
  { header: "status", value: (d) => d.status },
  { header: "attempts", value: (d) => d.attempts },
  { header: "last error", value: (d) => d.lastError },
  { header: "updated", value: (d) => d.updatedAt },
];

function readBounded(path: string, what: string, maxBytes: number, code: "NOTIFY_TARGET_INVALID" | "NOTIFY_SECRET_INVALID"): string {
  try {
    const stat = statSync(path);
    if (stat.size > maxBytes) throw new MoatError(code, `${what} ${path} is over ${maxBytes} bytes`);
    // A secret file others can read is a leaked secret: refuse it as ssh does a private key.
    if (code === "NOTIFY_SECRET_INVALID" && (stat.mode & 0o077) !== 0) throw new MoatError(code, `${what} ${path} is readable by group or others; chmod 600 it first`);
    return readFileSync(path, "utf8").trim();
  } catch (error) {
    if (error instanceof MoatError) throw error;
    throw new MoatError(code, `cannot read ${what} ${path}: ${(error as Error).message}`);
  }
}

const severityOption = () => new Option("--min-severity <severity>", "least severity delivered by default (a playbook's notify action delivers regardless)").choices([...SEVERITIES]).default("low");

/** `moat notify …`: where alerts and response actions are sent. */
export function register(program: Command): void {
  const notify = program.command("notify").description("notification targets (signed webhooks, syslog over TLS, the MQTT alert topic), deliveries and dead letters");
  const add = notify.command("add").description("add a notification target");

  add
    .command("webhook <name> <url>")
    .description("POST alerts signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature); the secret is generated and shown once")
    .addOption(severityOption())
    .option("--ca <file>", "PEM CA certificates for the receiver's HTTPS certificate (default: the system's)")
    .option("--secret-file <file>", "use this whsec_… secret (mode 0600) instead of generating one; never pass a secret on the command line")
    .option("--json", "print {target, secret} as JSON")
    .addHelpText("after", "\nExample:\n  moat notify add webhook soc https://soc.example.net/hooks/moat --min-severity medium\n")
    .action(async (name: string, url: string, o: { minSeverity: string; ca?: string; secretFile?: string; json?: boolean }, command: Command) => {
      const caPem = o.ca ? readBounded(o.ca, "CA file", 64 * 1024, "NOTIFY_TARGET_INVALID") : undefined;
      const secret = o.secretFile ? readBounded(o.secretFile, "secret file", 1024, "NOTIFY_SECRET_INVALID") : undefined;
      await withApp(command, ["respond"], async (app) => {
        const added = await app.respond.notifier.addWebhook({ name, url, minSeverity: o.minSeverity, ...(caPem ? { caPem } : {}), ...(secret ? { secret } : {}) }, cliActor());
        if (o.json) printJson({ target: added.target, ...(secret ? {} : { secret: added.secret }) });
        else {
          process.stdout.write(`added webhook ${name} -> ${String(added.target.config.url)}\n`);
          if (!secret) {
            process.stdout.write(`${added.secret}\n`);
            process.stderr.write("the signing secret above is shown once and stored only sealed: give it to the receiver now\n");
          }
        }
      });
    });

  add
    .command("syslog <name> <host>")
    .description("send RFC 5424 messages over TLS (RFC 5425; plain TCP only to loopback), octet-counted (RFC 6587)")
    .option("--port <port>", "port (default 6514 for TLS, 514 for TCP)", parsePort)
    .addOption(new Option("--transport <transport>", "tls or tcp (tcp: loopback only)").choices(["tls", "tcp"]).default("tls"))
    .option("--ca <file>", "PEM CA certificates for the syslog server's certificate (default: the system's)")
    .option("--facility <n>", "syslog facility 0-23 (default 10, security/authorization)", integerIn(0, 23))
    .addOption(severityOption())
    .option("--json", "print the target as JSON")
    .addHelpText("after", "\nExample:\n  moat notify add syslog siem siem.example.net --ca siem-ca.pem\n")
    .action(async (name: string, host: string, o: { port?: number; transport: "tls" | "tcp"; ca?: string; facility?: number; minSeverity: string; json?: boolean }, command: Command) => {
      const caPem = o.ca ? readBounded(o.ca, "CA file", 64 * 1024, "NOTIFY_TARGET_INVALID") : undefined;
      await withApp(command, ["respond"], async (app) => {
        const target = await app.respond.notifier.addSyslog(
          { name, host, port: o.port ?? (o.transport === "tls" ? 6514 : 514), transport: o.transport, minSeverity: o.minSeverity, ...(caPem ? { caPem } : {}), ...(o.facility !== undefined ? { facility: o.facility } : {}) },
          cliActor(),
        );
        if (o.json) printJson(target);
        else process.stdout.write(`added syslog ${name} -> ${o.transport}://${host}:${String(target.config.port)}\n`);
      });
    });

  add
    .command("mqtt <name>")
    .description("publish alerts on the embedded broker at <prefix>/<severity> (readable only by roles that grant it; see docs/detect.md)")
    .option("--prefix <topic>", "topic prefix", "moat/alerts")
    .addOption(severityOption())
    .option("--json", "print the target as JSON")
    .addHelpText("after", "\nExample:\n  moat notify add mqtt ops-tools --prefix moat/alerts --min-severity high\n")
    .action(async (name: string, o: { prefix: string; minSeverity: string; json?: boolean }, command: Command) =>
      withApp(command, ["respond"], async (app) => {
        const target = await app.respond.notifier.addMqtt({ name, prefix: o.prefix, minSeverity: o.minSeverity }, cliActor());
        if (o.json) printJson(target);
        else process.stdout.write(`added mqtt ${name} -> ${o.prefix}/<severity>\n`);
      }),
    );

  notify
    .command("list")
    .description("list notification targets (never their secrets)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat notify list --json\n")
    .action(async (o: { json?: boolean }, command: Command) =>
      withApp(command, ["respond"], async (app) => {
        const targets = await app.respond.notifier.listTargets();
        if (o.json) printJson(targets);
        else printTable(targets, TARGET_COLUMNS);
      }),
    );

  notify
    .command("remove <name>")
    .description("remove a target with its queued deliveries and dead letters")
    .addHelpText("after", "\nExample:\n  moat notify remove soc\n")
    .action(async (name: string, _o: unknown, command: Command) =>
      withApp(command, ["respond"], async (app) => {
        await app.respond.notifier.removeTarget(name, cliActor());
        process.stdout.write(`removed ${name}\n`);
      }),
    );

  notify
    .command("deliveries")
    .description("list deliveries, newest first")
    .addOption(new Option("--status <status>", "only this status").choices(["pending", "delivered", "dead"]))
    .option("--limit <n>", "how many (max 1000)", parsePageLimit, 100)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat notify deliveries --status pending --json\n")
    .action(async (o: { status?: "pending" | "delivered" | "dead"; limit: number; json?: boolean }, command: Command) =>
      withApp(command, ["respond"], async (app) => {
        const rows = await app.respond.notifier.deliveries({ limit: o.limit, ...(o.status ? { status: o.status } : {}) });
        if (o.json) printJson(rows);
        else printTable(rows, DELIVERY_COLUMNS);
      }),
    );

  notify
    .command("dead-letters")
    .description("list deliveries that failed every attempt")
    .option("--limit <n>", "how many (max 1000)", parsePageLimit, 100)
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat notify dead-letters --json\n")
    .action(async (o: { limit: number; json?: boolean }, command: Command) =>
      withApp(command, ["respond"], async (app) => {
        const rows = await app.respond.notifier.deadLetters(o.limit);
        if (o.json) printJson(rows);
        else printTable(rows, DELIVERY_COLUMNS);
      }),
    );

  notify
    .command("redeliver <deliveryId>")
    .description("send a dead letter again now (same body, fresh signature); if it fails again it is retried with backoff by the server")
    .option("--json", "print the delivery as JSON")
    .addHelpText("after", "\nExample:\n  moat notify redeliver msg_2b7e151628aed2a6abf7158809cf4f3c\n")
    .action(async (id: string, o: { json?: boolean }, command: Command) =>
      withApp(command, ["respond"], async (app) => {
        const row = await app.respond.notifier.redeliver(id, cliActor());
        if (o.json) printJson(row);
        else printRecord({ id: row.id, target: row.target, status: row.status, attempts: row.attempts, lastError: row.lastError });
        if (row.status !== "delivered") process.exitCode = 1;
      }),
    );
}

