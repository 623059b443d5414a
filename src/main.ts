/**
 * The composition root: config → store → keys → domains → servers. The only place that wires.
 * `initialize` is `moat init`; `createApp` opens an initialised installation for every other command.
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import pino, { type Logger } from "pino";
import { buildApi, PkiHttpServer } from "./api/index.js";
import { AuditService } from "./audit/index.js";
import { DeviceCredentialService, MoatDeviceDirectory, startBroker, type MoatBroker } from "./broker/index.js";
import type { MoatConfig } from "./config/index.js";
import { MoatError, isMoatError } from "./errors.js";
import { DeviceService, TokenService } from "./identity/index.js";
import { CampaignService, FirmwareKeyService, TufService, UNDELIVERED, mqttOtaNotifier, parseOtaStatusMessage, statusTopic, type FirmwareServices } from "./firmware/index.js";
import { firmwareStore, policyStore } from "./store/index.js";
import { createKekFile, DataProtection, Envelope, KEK_FILE, KekRotation, kekProviderFromConfig, pkcs11ConfigFrom, type KekProvider } from "./keys/index.js";
import { CaRegistry, DEFAULT_PUBLIC_URL, Pki, TokenCaKeys, type CaKeyStorage, type KeyType } from "./pki/index.js";
import { PolicyService } from "./policy/index.js";
import { ScanService } from "./scanner/index.js";
import { scannerStore } from "./store/index.js";
import { AuditRepository, brokerCredentialStore, caRegistryStore, identityStore, KyselySealedBlobStore, MetaRepository, pkiStore, SQLITE_FILE, Store } from "./store/index.js";

export interface App {
  readonly config: MoatConfig;
  readonly store: Store;
  readonly envelope: Envelope;
  readonly audit: AuditService;
  readonly devices: DeviceService;
  readonly tokens: TokenService;
  readonly ca: CaRegistry;
  readonly meta: MetaRepository;
  readonly trustDomain: string;
  /** Base URL for CRL/OCSP/caIssuers links. */
  readonly publicUrl: string;
  /** True when the database answers (readiness). */
  ready(): Promise<boolean>;
  /** Prometheus text from components (broker, PKI, …), appended to /metrics. */
  readonly metricsSources: (() => Promise<string> | string)[];
  // --- services added by domains (pki, policy, broker, keys, firmware, scanner) ---
  /** Roles, assignments, device and operator decisions (issue 4); also the broker's Decider and the API's operator authorization. */
  readonly policy: PolicyService;
  /** Device certificates, CRL, OCSP, EST enrollment (issue 3). */
  readonly pki: Pki;
  /** Device JWT credentials for the MQTT broker: registered public keys and rotating HMAC secrets (issue 5). */
  readonly deviceCredentials: DeviceCredentialService;
  /** Encryption at rest for applications: records and files under the KEK provider (issue 6). */
  readonly dataProtection: DataProtection;
  /** KEK rotation, status and retirement over every envelope in the store (issue 6). */
  readonly kekRotation: KekRotation;
  /** Firmware signing keys, the TUF repository and OTA campaigns (issue 7). */
  readonly firmware: FirmwareServices;
  /** Port scans, service checks and their stored findings (issue 9). */
  readonly scans: ScanService;
  close(): Promise<void>;
}

const KEK_CHECK_PLAINTEXT = "moat-kek-check-v1";
const KEK_CHECK_AAD = "meta:kek-check";

/** The KEK provider: file (default), env (MOAT_MASTER_KEY) or a PKCS#11 token (keys.provider=pkcs11). */
function kekProviderFor(config: MoatConfig, options: { create?: boolean } = {}): KekProvider {
  return kekProviderFromConfig(config, options);
}

/** Whether the KEK lives in the data dir's kek.key (not in the environment or a token). */
function usesKekFile(config: MoatConfig): boolean {
  return !config.masterKey && config["keys.provider"] === "file";
}

function publicUrlOf(config: MoatConfig): string {
  return config.publicUrl ?? (config.pkiPort === 8080 ? DEFAULT_PUBLIC_URL : `http://127.0.0.1:${config.pkiPort}`);
}

/** `pki.groupCertDays` entries `group=days` → per-group device certificate validity. */
function groupCertDays(entries: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of entries) {
    const match = /^([A-Za-z0-9][A-Za-z0-9._-]{0,63})=(\d{1,4})$/.exec(entry.trim());
    if (!match) throw new MoatError("CONFIG_INVALID", `pki.groupCertDays entry ${JSON.stringify(entry)} is not group=days`);
    out[match[1]!] = Number(match[2]);
  }
  return out;
}

/** Opens an initialised installation and wires every service. */
export async function createApp(config: MoatConfig): Promise<App> {
  const store = await Store.open({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, mustExist: true, feedPollMs: config["feed.pollMs"] });
  let opened: App | undefined;
  try {
    await store.migrate();
    const meta = new MetaRepository(store.db);
    const trustDomain = await meta.get("trust_domain");
    const kekCheck = await meta.get("kek_check");
    if (!trustDomain || !kekCheck) throw new MoatError("DATA_DIR_NOT_INITIALIZED", `the database (${store.describe}) has not been initialised: run moat init`);
    const envelope = new Envelope(kekProviderFor(config));
    try {
      await envelope.open(Buffer.from(kekCheck, "base64"), KEK_CHECK_AAD);
    } catch (error) {
      if (isMoatError(error, "KEK_MISMATCH") || isMoatError(error, "ENVELOPE_DECRYPT_FAILED"))
        throw new MoatError("KEK_MISMATCH", "the configured KEK does not open this installation's secrets (wrong kek.key or MOAT_MASTER_KEY); nothing was decrypted", { cause: error });
      throw error;
    }
    const app = wire(config, store, envelope, meta, trustDomain);
    opened = app;
    // The API authorises with the compiled roles, so they are loaded before anything is served.
    await app.policy.reload();
    // CA keys in a token are found (and matched to their certificate) at start, not at the first signing.
    if (config["keys.provider"] === "pkcs11") await app.pki.issuers.current();
    return app;
  } catch (error) {
    // app.close also ends the token sessions (KEK, CA keys).
    await (opened ? opened.close() : store.close()).catch(() => {});
    throw error;
  }
}

function wire(config: MoatConfig, store: Store, envelope: Envelope, meta: MetaRepository, trustDomain: string): App {
  const audit = new AuditService(new AuditRepository(store.db, (fn) => store.transaction((tx) => fn(tx.db))));
  // Events appended inside domain transactions reach live listeners once committed.
  const stopForwarding = store.onCommittedEvent((event) => audit.notify(event));
  const identity = identityStore(store);
  // --- policy: roles and assignments in the store, compiled in memory, recompiled from the change feed ---
  const policy = new PolicyService(policyStore(store));
  const stopPolicyFeed = store.subscribe((change) => policy.onChange(change));
  // --- pki: CA keys made by `moat init --ca-keys pkcs11` live in the token (opened on first use) ---
  const caKeys = config["keys.provider"] === "pkcs11" ? new TokenCaKeys(pkcs11ConfigFrom(config)) : undefined;
  const pkiDevices = new DeviceService(identity);
  const pki = new Pki({
    store: pkiStore(store, (uow, id, actor) => pkiDevices.setStatusIn(uow, id, "active", actor, "first certificate").then(() => undefined)),
    registry: new CaRegistry(caRegistryStore(store), envelope, caKeys),
    trustDomain,
    publicUrl: publicUrlOf(config),
    validity: { defaultDays: config["pki.certDays"], maxDays: config["pki.maxCertDays"], groupDays: groupCertDays(config["pki.groupCertDays"]) },
    crlValidityMs: config["pki.crlValidityHours"] * 3_600_000,
    rotationGraceMs: config["pki.rotationGraceHours"] * 3_600_000,
    expiryWindowMs: config["pki.expiryWindowDays"] * 86_400_000,
  });
  const stopPkiFeed = store.subscribe((change) => pki.onChange(change));
  // --- firmware: keys sealed by the envelope, TUF repository in <data dir>/tuf, campaigns over the registry ---
  const firmwarePort = firmwareStore(store);
  const firmwareKeys = new FirmwareKeyService(firmwarePort, envelope);
  const tuf = new TufService(join(config.dataDir, "tuf"), firmwarePort, envelope);
  const groupDevices = new DeviceService(identity);
  const campaigns = new CampaignService({
    store: firmwarePort,
    keys: firmwareKeys,
    tuf,
    groups: {
      async devicesInGroup(group) {
        const ids: string[] = [];
        for (let after: string | undefined; ; ) {
          const page = await groupDevices.list({ group, limit: 1000, ...(after ? { after } : {}) });
          // Only active devices take part: pending ones have no credentials yet, suspended ones must not update.
          ids.push(...page.devices.filter((d) => d.status === "active").map((d) => d.id));
          if (!page.next) return ids;
          after = page.next;
        }
      },
    },
  });
  const app: App = {
    config,
    store,
    envelope,
    audit,
    devices: new DeviceService(identity),
    tokens: new TokenService(identity, (role) => policy.isOperatorRole(role)),
    policy,
    ca: new CaRegistry(caRegistryStore(store), envelope, caKeys),
    meta,
    trustDomain,
    publicUrl: publicUrlOf(config),
    pki,
    deviceCredentials: new DeviceCredentialService(brokerCredentialStore(store), envelope),
    firmware: { keys: firmwareKeys, tuf, campaigns },
    scans: new ScanService(scannerStore(store), { allowedTargets: config["scanner.allowedTargets"] }),
    dataProtection: new DataProtection(envelope),
    kekRotation: new KekRotation(envelope, new KyselySealedBlobStore(store.db, store.dialect), {
      load: async () => {
        const text = await meta.get("kek_rotation");
        return text ? JSON.parse(text) : null;
      },
      save: (state) => meta.set("kek_rotation", state ? JSON.stringify(state) : ""),
    }),
    async ready() {
      try {
        await store.latestSeq();
        return true;
      } catch {
        return false;
      }
    },
    metricsSources: [],
    async close() {
      stopForwarding();
      stopPkiFeed();
      stopPolicyFeed();
      await store.close();
      caKeys?.close();
      await envelope.kekProvider.close?.();
    },
  };
  return app;
}

export interface InitializeOptions {
  trustDomain: string;
  keyType: KeyType;
  hostnames: string[];
  /** `pkcs11`: the root and issuing CA keys are generated in the token (needs keys.provider=pkcs11). */
  caKeys?: CaKeyStorage;
}

export interface InitializeResult {
  app: App;
  /** The first admin API token: shown once, never stored. */
  adminToken: string;
  created: string[];
}

/**
 * `moat init`: data dir, KEK, database, CA hierarchy, server certificate, built-in roles, admin token.
 * Refuses an initialised data dir or database without changing anything. If a step fails, the files
 * this run created are removed again.
 */
export async function initialize(config: MoatConfig, options: InitializeOptions): Promise<InitializeResult> {
  const kekPath = join(config.dataDir, KEK_FILE);
  const sqlitePath = join(config.dataDir, SQLITE_FILE);
  if (usesKekFile(config) && existsSync(kekPath))
    throw new MoatError("DATA_DIR_ALREADY_INITIALIZED", `${config.dataDir} already holds a KEK (${KEK_FILE}); moat init changed nothing`);
  if (!config.databaseUrl && existsSync(sqlitePath))
    throw new MoatError("DATA_DIR_ALREADY_INITIALIZED", `${config.dataDir} already holds a database (${SQLITE_FILE}); moat init changed nothing`);

  if (options.caKeys === "pkcs11" && config["keys.provider"] !== "pkcs11")
    throw new MoatError("CONFIG_INVALID", "--ca-keys pkcs11 needs keys.provider=pkcs11 (MOAT_KEYS_PROVIDER) with a token configured; moat init changed nothing");
  const created: string[] = [];
  const dataDirExisted = existsSync(config.dataDir);
  let store: Store | undefined;
  let app: App | undefined;
  try {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    store = await Store.open({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, feedPollMs: config["feed.pollMs"] });
    if (!config.databaseUrl) created.push(sqlitePath);
    await store.migrate();
    const meta = new MetaRepository(store.db);
    if (await meta.get("trust_domain")) throw new MoatError("DATA_DIR_ALREADY_INITIALIZED", `the database (${store.describe}) is already initialised; moat init changed nothing`);
    if (usesKekFile(config)) created.push(createKekFile(config.dataDir));
    const envelope = new Envelope(kekProviderFor(config, { create: true }));
    app = wire(config, store, envelope, meta, options.trustDomain);
    await app.ca.initialize({ keyType: options.keyType, trustDomain: options.trustDomain, hostnames: options.hostnames, publicUrl: app.publicUrl, caKeys: options.caKeys ?? "software" }, "init");
    // --- policy: seed built-in roles ---
    await app.policy.seedBuiltins("init");
    const { token } = await app.tokens.create({ name: "admin", role: "admin" }, "init");
    await meta.set("kek_check", (await envelope.seal(Buffer.from(KEK_CHECK_PLAINTEXT), KEK_CHECK_AAD)).toString("base64"));
    await meta.set("initialized_at", new Date().toISOString());
    // Written last: its presence is what marks the installation as initialised.
    await meta.set("trust_domain", options.trustDomain);
    return { app, adminToken: token, created };
  } catch (error) {
    // app.close also ends the token sessions (KEK, CA keys) so a failed init leaves no login behind.
    await (app ? app.close() : store?.close())?.catch(() => {});
    for (const path of created.reverse()) rmSync(path, { force: true });
    if (!config.databaseUrl) for (const suffix of ["-wal", "-shm"]) rmSync(sqlitePath + suffix, { force: true });
    if (!dataDirExisted) rmSync(config.dataDir, { recursive: true, force: true });
    throw error;
  }
}

export interface RunningServers {
  apiUrl: string;
  close(): Promise<void>;
}

/** `moat serve`: the REST API (HTTPS) and, as domains add them, PKI endpoints and the MQTT broker. */
export async function startServers(app: App, logger: Logger): Promise<RunningServers> {
  const config = app.config;
  const tls = await app.ca.serverTls();
  const api = await buildApi(app, {
    https: { key: tls.key, cert: tls.cert, ca: tls.ca },
    logger,
    bodyLimitBytes: config["api.bodyLimitBytes"],
    authFailureLimit: config["api.authFailureLimit"],
    authFailureWindowSeconds: config["api.authFailureWindowSeconds"],
  });
  await api.listen({ host: config.host, port: config.apiPort });
  const address = api.server.address();
  const port = typeof address === "object" && address ? address.port : config.apiPort;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const closers: (() => Promise<void>)[] = [() => api.close()];
  // --- servers added by domains (pki endpoints, broker) ---
  // PKI: CRL, OCSP and CA certificates over plain HTTP (RFC 5280/6960), and the expiry/CRL scheduler.
  const pkiServer = new PkiHttpServer(app, { host: config.host, port: config.pkiPort, onError: (error) => logger.error({ err: error }, "PKI endpoint failed") });
  await pkiServer.listen();
  closers.push(() => pkiServer.close());
  const stopPkiScheduler = app.pki.startScheduler(60_000, (error) => logger.error({ err: error }, "PKI scheduler pass failed"));
  closers.push(async () => stopPkiScheduler());
  // Firmware: re-sign TUF timestamp/snapshot before they expire (the /tuf/ handler also refreshes on demand).
  const tufRefresh = setInterval(() => {
    app.firmware.tuf
      .isInitialized()
      .then((initialized) => (initialized ? app.firmware.tuf.refresh() : undefined))
      .catch((error: unknown) => logger.error({ err: error }, "TUF refresh failed"));
  }, 10 * 60_000);
  tufRefresh.unref();
  closers.push(async () => clearInterval(tufRefresh));
  if (config["broker.enabled"]) {
    const mqtt = await startMqttBroker(app, logger);
    app.metricsSources.push(() => mqtt.broker.metrics.registry.render());
    closers.push(() => mqtt.close());
  }
  return {
    apiUrl: `https://${host}:${port}`,
    async close() {
      for (const close of closers.reverse()) await close().catch((error) => logger.error({ err: error }, "error while closing"));
    },
  };
}

/** The MQTT broker (issue 5) wired to the registry, PKI, audit log and change feed. */
export async function startMqttBroker(app: App, logger: Logger): Promise<{ broker: MoatBroker; close(): Promise<void> }> {
  const config = app.config;
  const registry = app.devices;
  // Store-backed roles and assignments, kept current from the change feed by wire().
  const policy = app.policy;
  await policy.reload();
  const identity = identityStore(app.store);
  const broker = await startBroker(
    {
      directory: new MoatDeviceDirectory(registry, app.pki.certificates, app.deviceCredentials),
      revocationSource: { revokedSerials: () => app.pki.certificates.revokedSerials() },
      decider: policy,
      tls: {
        load: async () => {
          const tls = await app.ca.serverTls();
          const issuing = await app.ca.list("issuing");
          return { keyPem: tls.key, certPem: tls.cert, caPems: [tls.ca, ...issuing.map((c) => c.certificatePem)], issuingCaPems: issuing.map((c) => c.certificatePem) };
        },
      },
      events: app.audit,
      feed: app.store,
      lastSeen: { write: (entries) => identity.devices.recordSeen(entries.map((e) => ({ id: e.deviceId, at: e.at, address: e.address }))) },
      logger,
    },
    {
      host: config.host,
      mqttPort: config["broker.mqttPort"],
      mqttPlainPort: config["broker.mqttPlainPort"],
      mqttWssPort: config["broker.mqttWssPort"],
      audience: config["broker.audience"],
      maxPayloadBytes: config["broker.maxPayloadBytes"],
      messagesPerSecond: config["broker.messagesPerSecond"],
      rateBurst: config["broker.messagesPerSecond"] * 2,
      maxPublishDenials: config["broker.maxPublishDenials"],
      authFailureLimit: config["broker.authFailureLimit"],
      banSeconds: config["broker.banSeconds"],
      redisUrl: config.redisUrl,
    },
  );
  const stopOta = connectOtaCampaigns(app, broker, logger);
  return {
    broker,
    close: async () => {
      stopOta();
      await broker.close();
    },
  };
}

/**
 * OTA campaigns (issue 7) over this broker: offers go out on `devices/{id}/ota`, reports come back on
 * `devices/{id}/status` (docs/firmware.md). Returns the function that disconnects them again.
 */
function connectOtaCampaigns(app: App, broker: MoatBroker, logger: Logger): () => void {
  const campaigns = app.firmware.campaigns;
  const notifier = mqttOtaNotifier((topic, payload) => broker.publish(topic, payload, { qos: 1 }));
  campaigns.setNotifier(notifier);
  // One promise chain per device: its reports are applied in the order the broker accepted them.
  const chains = new Map<string, Promise<void>>();
  const stopIntake = broker.onDeviceMessage(({ deviceId, topic, payload }) => {
    // The device is the authenticated one, never read from the topic.
    if (topic !== statusTopic(deviceId)) return;
    let report: ReturnType<typeof parseOtaStatusMessage>;
    try {
      report = parseOtaStatusMessage(payload);
    } catch (error) {
      logger.warn({ deviceId, code: isMoatError(error) ? error.code : undefined }, "OTA: malformed status report ignored");
      return;
    }
    if (!report) return;
    const { campaignId, status } = report;
    const next = (chains.get(deviceId) ?? Promise.resolve())
      .then(() => campaigns.report(campaignId, deviceId, status))
      .then(
        () => undefined,
        (error: unknown) => logger.warn({ deviceId, campaignId, status, code: isMoatError(error) ? error.code : undefined, err: error }, "OTA: status report refused"),
      );
    chains.set(deviceId, next);
    void next.then(() => {
      if (chains.get(deviceId) === next) chains.delete(deviceId);
    });
  });
  // Offers owed from before this start (a campaign released while no broker ran) go out again; QoS 1 is at-least-once anyway.
  void (async () => {
    for (const state of ["running", "paused"])
      for (const campaign of await campaigns.list({ status: state, limit: 1000 }))
        for (const owed of await campaigns.pendingNotifications(campaign.id)) await notifier.notify(owed.deviceId, owed.message);
  })().catch((error: unknown) => logger.error({ err: error }, "OTA: could not re-send pending offers"));
  // Offers and aborts decided by another process (`moat ota release|resume|abort` on the same database).
  const stopFeed = app.store.subscribe((change) => {
    campaigns.deliverFromFeed(change).catch((error: unknown) => logger.error({ err: error, campaignId: change.subject }, "OTA: could not deliver a campaign change"));
  });
  return () => {
    stopIntake();
    stopFeed();
    campaigns.setNotifier(UNDELIVERED);
  };
}

export function createLogger(config: MoatConfig): Logger {
  return pino({ level: config.logLevel, redact: { paths: ["req.headers.authorization", "*.password", "*.token", "*.secret"], censor: "[redacted]" } }, pino.destination(2));
}
