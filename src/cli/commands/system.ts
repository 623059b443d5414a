import { Command, Option } from "commander";
import { CA_KEY_STORAGES, KEY_TYPES, type CaKeyStorage, type KeyType } from "../../pki/index.js";
import { createApp, initialize } from "../../core.js";
import { createLogger, startServers } from "../../serve.js";
import { MetaRepository, Store } from "../../store/index.js";
import { configFrom, type FlagMap } from "../context.js";
import { printJson } from "../output.js";
import { collect, parsePort } from "../parse.js";

const SERVE_FLAGS: FlagMap = {
  host: "host",
  apiPort: "apiPort",
  pkiPort: "pkiPort",
  publicUrl: "publicUrl",
  mqttPort: "broker.mqttPort",
  mqttPlainPort: "broker.mqttPlainPort",
  mqttWssPort: "broker.mqttWssPort",
};

function addServeOptions(command: Command): Command {
  return command
    .option("--host <address>", "address to bind (default 127.0.0.1)")
    .option("--api-port <port>", "HTTPS API port (default 8443)", parsePort)
    .option("--pki-port <port>", "plain-HTTP CRL/OCSP port (default 8080)", parsePort)
    .option("--public-url <url>", "base URL devices use for CRL/OCSP")
    .option("--mqtt-port <port>", "MQTT over TLS port (default 8883)", parsePort)
    .option("--mqtt-plain-port <port>", "plaintext MQTT on loopback (insecure; flagged)", parsePort)
    .option("--mqtt-wss-port <port>", "MQTT over secure WebSockets", parsePort);
}

interface InitOptions {
  trustDomain: string;
  keyType: KeyType;
  caKeys: CaKeyStorage;
  hostname?: string[];
  json?: boolean;
}

async function runInit(command: Command, options: InitOptions): Promise<void> {
  const config = configFrom(command, SERVE_FLAGS);
  const result = await initialize(config, { trustDomain: options.trustDomain, keyType: options.keyType, caKeys: options.caKeys, hostnames: options.hostname ?? ["localhost", "127.0.0.1"] });
  try {
    const root = await result.app.ca.active("root");
    const issuing = await result.app.ca.active("issuing");
    if (options.json) {
      printJson({ dataDir: config.dataDir, database: result.app.store.describe, trustDomain: options.trustDomain, root: root.serialHex, issuing: issuing.serialHex, caKeys: root.keyLocation ? "pkcs11" : "software", rootKeyLocation: root.keyLocation ?? null, issuingKeyLocation: issuing.keyLocation ?? null, adminToken: result.adminToken });
      return;
    }
    process.stdout.write(
      [
        `Initialised Moat in ${config.dataDir} (${result.app.store.describe})`,
        `  trust domain   ${options.trustDomain}`,
        `  root CA        ${root.subject} (${root.keyType}, serial ${root.serialHex})`,
        `  issuing CA     ${issuing.subject} (serial ${issuing.serialHex})`,
        ...(root.keyLocation ? [`  CA keys        in the PKCS#11 token: ${root.keyLocation}, ${issuing.keyLocation} (non-extractable; the TLS server key stays sealed here)`] : []),
        config.masterKey ? "  KEK            from MOAT_MASTER_KEY" : `  KEK            ${config.dataDir}/kek.key (mode 0600; back it up: without it nothing can be decrypted)`,
        "",
        "Admin API token (shown once; store it now):",
        `  ${result.adminToken}`,
        "",
      ].join("\n"),
    );
  } finally {
    await result.app.close();
  }
}

async function runServe(command: Command): Promise<void> {
  const config = configFrom(command, SERVE_FLAGS);
  const logger = createLogger(config);
  const app = await createApp(config, { migrate: true });
  let servers;
  try {
    servers = await startServers(app, logger);
  } catch (error) {
    await app.close();
    throw error;
  }
  logger.info({ api: servers.apiUrl, database: app.store.describe }, "moat serving");
  process.stderr.write(`moat: API on ${servers.apiUrl} (database: ${app.store.describe}); Ctrl-C to stop\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, "shutting down");
      resolve();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await servers.close();
  await app.close();
  process.stderr.write("moat: stopped\n");
}

function initOptions(command: Command): Command {
  return command
    .option("--trust-domain <name>", "DNS-style name used in certificate subjects and device URIs", "moat.local")
    .addOption(new Option("--key-type <type>", "CA key type").choices([...KEY_TYPES]).default("ec-p256"))
    .addOption(new Option("--ca-keys <where>", "where the root and issuing CA keys are generated (pkcs11: in the token, needs keys.provider=pkcs11)").choices([...CA_KEY_STORAGES]).default("software"))
    .option("--hostname <name>", "host name or IP for the server certificate (repeatable; default localhost and 127.0.0.1)", collect)
    .option("--json", "print the result as JSON");
}

/** init, serve, start and migrate. */
export function register(program: Command): void {
  initOptions(program.command("init"))
    .option("--public-url <url>", "base URL of the PKI endpoints written into CA and device certificates (default http://127.0.0.1:<pki port>)")
    .option("--pki-port <port>", "the plain-HTTP CRL/OCSP port `moat serve` will use (default 8080)", parsePort)
    .description("create the data dir, KEK, database, CA hierarchy, server certificate and the first admin token")
    .addHelpText("after", "\nExample:\n  moat init --trust-domain fleet.example.com --hostname moat.example.com --public-url http://moat.example.com:8080\n")
    .action(async (options: InitOptions, command: Command) => runInit(command, options));

  addServeOptions(program.command("serve"))
    .description("run the REST API, PKI endpoints and MQTT broker until SIGINT/SIGTERM")
    .addHelpText("after", "\nExample:\n  moat serve --api-port 8443 --pki-port 8080\n")
    .action(async (_options: unknown, command: Command) => runServe(command));

  addServeOptions(initOptions(program.command("start")))
    .description("moat init if the data dir is new, then moat serve (what `npm start` runs)")
    .addHelpText("after", "\nExample:\n  npm start\n  moat start --data-dir /var/lib/moat\n")
    .action(async (options: InitOptions, command: Command) => {
      try {
        await runInit(command, options);
      } catch (error) {
        if ((error as { code?: string }).code !== "DATA_DIR_ALREADY_INITIALIZED") throw error;
        process.stderr.write("moat: data dir already initialised; serving it\n");
      }
      await runServe(command);
    });

  program
    .command("migrate")
    .description("apply pending database migrations (with --status: only show where the schema stands)")
    .option("--status", "list applied, pending and unknown migrations; change nothing")
    .option("--json", "print the result as JSON")
    .addHelpText("after", "\nExamples:\n  MOAT_DATABASE_URL=postgres://moat@db/moat moat migrate\n  moat migrate --status --json\n")
    .action(async (options: { status?: boolean; json?: boolean }, command: Command) => {
      const config = configFrom(command);
      const store = await Store.open({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, mustExist: !config.databaseUrl });
      let report;
      let initialised: boolean;
      try {
        if (options.status) {
          const status = await store.schemaStatus();
          if (options.json) printJson(status);
          else
            process.stdout.write(
              [
                `applied: ${status.applied.length}`,
                `pending: ${status.pending.join(", ") || "none"}`,
                ...(status.unknown.length ? [`unknown (from a newer moat): ${status.unknown.join(", ")}`] : []),
                "",
              ].join("\n"),
            );
          return;
        }
        report = await store.migrate();
        const meta = new MetaRepository(store.db);
        initialised = !!(await meta.get("trust_domain")) && !!(await meta.get("kek_check"));
      } finally {
        await store.close();
      }
      // An installation made before audit keys existed gets its key now (it needs the KEK, so after the schema).
      let auditKey: { created: boolean; location: string } | null = null;
      if (initialised) {
        const app = await createApp(config, { migrate: true, services: [] });
        try {
          auditKey = await app.auditKeys.ensure();
        } finally {
          await app.close();
        }
      }
      if (options.json) printJson({ ...report, ...(auditKey ? { auditKey } : {}) });
      else {
        process.stdout.write(report.applied.length ? `applied: ${report.applied.join(", ")}\n` : "schema is up to date\n");
        if (auditKey?.created) process.stdout.write(`created the audit key (${auditKey.location}); export it with: moat audit key export --out audit.vkey\n`);
      }
    });
}
