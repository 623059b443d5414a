/**
 * What only `moat serve` and `moat start` need, on top of the core: the REST API, the PKI HTTP
 * endpoints, the MQTT broker, the schedulers and the OTA link. No other command loads this file.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import pino, { type Logger } from "pino";
import { buildApi, PkiHttpServer } from "./api/index.js";
import { createDetectMetrics, DetectionRuntime, SNAPSHOT_FILE } from "./detect/index.js";
import { CONNECTABLE_STATUSES, MoatDeviceDirectory, startBroker, type MoatBroker, type TrafficObserver } from "./broker/index.js";
import { listenFailed, type MoatConfig } from "./config/index.js";
import { isMoatError, MoatError } from "./errors.js";
import { linkOtaCampaigns } from "./firmware/index.js";
import { PostureChangeFollower } from "./posture/index.js";
import { SessionRecorder } from "./sessions/index.js";
import { KyselySessionRepository } from "./store/index.js";
import { isDeviceId } from "./identity/index.js";
import { MAX_PAGE_ITEMS } from "./lib/page.js";
import { findMosquittoBinary, readMosquittoSetup, sealedSecrets, startMosquittoPlane, type DeviceFacts, type DeviceSource, type MosquittoPlane } from "./mosquitto/index.js";
import { writeFileAtomicSync } from "./lib/atomic-file.js";
import { advertisedUrls, parseCertificate, toPem } from "./pki/index.js";
import type { App } from "./core.js";

export interface RunningServers {
  apiUrl: string;
  close(): Promise<void>;
}

/** `moat serve`: the REST API (HTTPS), the PKI endpoints, the MQTT broker and the schedulers. */
export async function startServers(app: App, logger: Logger): Promise<RunningServers> {
  const config = app.config;
  const tls = await app.ca.serverTls();
  // GET /v1/info advertises the broker's bound port, known once the broker listens (below).
  let mqttPort: number | null = null;
  const api = await buildApi(app, {
    endpoints: { apiUrl: config["api.publicUrl"], mqttUrl: config["broker.publicUrl"], mqttPort: () => mqttPort, jwtAudience: config["broker.audience"] },
    https: { key: tls.key, cert: tls.cert, ca: tls.ca },
    logger,
    bodyLimitBytes: config["api.bodyLimitBytes"],
    authFailureLimit: config["api.authFailureLimit"],
    authFailureWindowSeconds: config["api.authFailureWindowSeconds"],
  });
  try {
    await api.listen({ host: config.host, port: config.apiPort });
  } catch (error) {
    await api.close();
    throw listenFailed(error, { host: config.host, port: config.apiPort, service: "the REST API", setting: "apiPort" });
  }
  const address = api.server.address();
  const port = typeof address === "object" && address ? address.port : config.apiPort;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const closers: (() => Promise<void>)[] = [() => api.close()];
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch((error) => logger.error({ err: error }, "error while closing"));
  };
  // A listener that cannot bind stops the start; what was already started is closed again.
  try {
    // PKI: CRL, OCSP and CA certificates over plain HTTP (RFC 5280/6960), and the expiry/CRL scheduler.
    const pkiServer = new PkiHttpServer(app, { host: config.host, port: config.pkiPort, onError: (error) => logger.error({ err: error }, "PKI endpoint failed") });
    await pkiServer.listen();
    closers.push(() => pkiServer.close());
    void warnAboutUnansweredPkiUrls(app, logger);
    if (!config.databaseUrl) closers.push(registerSqliteNode(config.dataDir, logger));
    const stopPkiScheduler = app.pki.startScheduler(60_000, (error) => logger.error({ err: error }, "PKI scheduler pass failed"));
    closers.push(async () => stopPkiScheduler());
    // Audit: a signed checkpoint at start and on a schedule, copied to the configured witnesses.
    const stopCheckpoints = app.auditCheckpoints.startSchedule(config["audit.checkpointMinutes"] * 60_000, (error) => logger.error({ err: error }, "audit checkpoint failed"));
    closers.push(async () => stopCheckpoints());
    // Firmware: re-sign TUF timestamp/snapshot before they expire (the /tuf/ handler also refreshes on demand).
    const tufRefresh = setInterval(() => {
      app.firmware.tuf
        .isInitialized()
        .then((initialized) => (initialized ? app.firmware.tuf.refresh() : undefined))
        .catch((error: unknown) => logger.error({ err: error }, "TUF refresh failed"));
    }, 10 * 60_000);
    tufRefresh.unref();
    closers.push(async () => clearInterval(tufRefresh));
    // Live sessions from the data plane's connect/disconnect events (before any data plane accepts a client).
    const recorder = new SessionRecorder(new KyselySessionRepository(app.store.db), { onError: (error) => logger.error({ err: error }, "session record write failed") });
    await recorder.start(app.audit);
    closers.push(() => recorder.stop());
    // Posture: every check on a schedule; between runs, a change about one device re-evaluates that device.
    const stopPosture = app.posture.startSchedule(config["posture.intervalMinutes"] * 60_000, (error) => logger.error({ err: error }, "posture run failed"));
    const follower = new PostureChangeFollower(app.posture, (error) => logger.error({ err: error }, "posture re-evaluation failed"));
    const unfollow = app.store.subscribe((change) => follower.take(change));
    closers.push(async () => {
      unfollow();
      await stopPosture();
      await follower.stop();
    });
    // Detection before any data plane accepts a client: it counts from the first connection.
    const detection = await startDetection(app, logger);
    closers.push(() => detection.close());
    let mqtt: Awaited<ReturnType<typeof startMqttBroker>> | null = null;
    if (config["broker.enabled"] && config["broker.mode"] === "mosquitto") {
      const plane = await startMosquittoDataPlane(app, logger);
      mqttPort = readMosquittoSetup(config["broker.mosquitto.dir"]).port;
      app.metricsSources.push(() => plane.metrics());
      closers.push(() => plane.close());
    } else if (config["broker.enabled"]) {
      const started = await startMqttBroker(app, logger, { traffic: { published: (id, bytes) => detection.engine.published(id, bytes), delivered: (id) => detection.engine.delivered(id) } });
      mqtt = started;
      mqttPort = started.broker.ports.tls ?? null;
      app.metricsSources.push(() => started.broker.metrics.registry.metrics());
      closers.push(() => started.close());
    }
    closers.push(await startResponse(app, mqtt?.broker ?? null, logger));
  } catch (error) {
    await closeAll();
    throw error;
  }
  return {
    apiUrl: `https://${host}:${port}`,
    close: closeAll,
  };
}

const NODE_FILE = "serve.pid";

/**
 * Several `moat serve` on one SQLite data dir work, but share less than nodes on PostgreSQL with Redis
 * do; the second one says exactly what, at start. Each node records its pid in the data dir; a pid
 * that is still alive means another node serves this data dir. Returns the closer that removes the record.
 */
function registerSqliteNode(dataDir: string, logger: Logger): () => Promise<void> {
  const file = join(dataDir, NODE_FILE);
  let other: number | null = null;
  try {
    const pid = Number(readFileSync(file, "utf8").trim());
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && processIsAlive(pid)) other = pid;
  } catch {
    // No record: this is the only node.
  }
  if (other !== null)
    logger.warn(
      { otherPid: other, dataDir },
      "another moat serve (pid " +
        other +
        ") serves this SQLite data dir. Shared between the two: the database (devices, certificates, CRLs, roles, the audit log) and the change feed, which each node follows by polling every feed.pollMs, so revocations and CRLs reach both. Not shared: MQTT sessions, subscriptions and retained messages (each broker is separate unless redisUrl is set), bans, rate limits and API back-off (per node, in memory). Only one SQLite writer runs at a time, so writes queue; for several nodes use PostgreSQL (databaseUrl) and Redis (redisUrl), see docs/operations.md",
    );
  writeFileAtomicSync(file, `${process.pid}\n`);
  return async () => {
    try {
      if (Number(readFileSync(file, "utf8").trim()) === process.pid) rmSync(file, { force: true });
    } catch {
      // Already gone.
    }
  };
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Relying parties (`openssl verify -crl_download`, devices checking OCSP) follow the URLs written into
 * the CA certificates at `moat init`. When this server does not answer them (another --pki-port, a
 * changed host name), revocation checking fails or hangs for them, so say so at start (docs/pki.md,
 * "Correcting the CRL and OCSP URLs").
 */
async function warnAboutUnansweredPkiUrls(app: App, logger: Logger): Promise<void> {
  const urls = new Set<string>();
  for (const role of ["root", "issuing"] as const) for (const url of advertisedUrls(parseCertificate(new X509Certificate((await app.ca.active(role)).certificatePem).raw))) urls.add(url);
  for (const url of urls) {
    const status = await fetch(url, { signal: AbortSignal.timeout(3_000) }).then(
      (response) => response.status,
      (error: unknown) => (error as Error).message,
    );
    if (status === 200) continue;
    logger.warn(
      { url, answer: status, pkiPort: app.config.pkiPort, publicUrl: app.publicUrl },
      "the PKI endpoint named in the CA certificates does not answer here: relying parties cannot fetch CRLs or reach OCSP (see docs/pki.md, Correcting the CRL and OCSP URLs)",
    );
  }
}

/** The MQTT broker wired to the registry, PKI, policy, audit log and change feed, with OTA campaigns linked to it. */
export async function startMqttBroker(app: App, logger: Logger, options: { traffic?: TrafficObserver } = {}): Promise<{ broker: MoatBroker; close(): Promise<void> }> {
  const config = app.config;
  // Current roles before the first CONNECT is decided (an App from `initialize` has not loaded them yet).
  await app.policy.reload();
  const broker = await startBroker(
    {
      directory: new MoatDeviceDirectory(app.devices, app.pki.certificates, app.deviceCredentials, isDeviceId),
      revocationSource: { revokedSerials: () => app.pki.certificates.revokedSerials() },
      // Store-backed roles and assignments; the broker hands it each feed row before re-checking live sessions.
      decider: app.policy,
      tls: {
        load: async () => {
          const tls = await app.ca.serverTls();
          const issuing = await app.ca.list("issuing");
          return { keyPem: tls.key, certPem: tls.cert, caPems: [tls.ca, ...issuing.map((c) => c.certificatePem)], issuingCaPems: issuing.map((c) => c.certificatePem) };
        },
      },
      events: app.securityEvents,
      feed: app.store,
      lastSeen: { write: (entries) => app.devices.recordSeen(entries.map((e) => ({ id: e.deviceId, at: e.at, address: e.address }))) },
      logger,
      ...(options.traffic ? { traffic: options.traffic } : {}),
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
  // What devices report running (after an OTA boot, or from the SDK) goes into identity's firmware inventory.
  const unlinkOta = linkOtaCampaigns(app.firmware.campaigns, broker, app.store, logger, app.firmwareInventory);
  return {
    broker,
    close: async () => {
      unlinkOta();
      await broker.close();
    },
  };
}

/**
 * `broker.mode = mosquitto`: Mosquitto from the directory `moat mosquitto setup` wrote, supervised and
 * kept in step with the registry, the policy and the PKI (docs/broker.md). OTA offers are not published
 * on this data plane.
 */
export async function startMosquittoDataPlane(app: App, logger: Logger): Promise<MosquittoPlane> {
  const config = app.config;
  const setup = readMosquittoSetup(config["broker.mosquitto.dir"]);
  // The port lives in Mosquitto's configuration; 0 and the default mean "whatever setup wrote".
  const asked = config["broker.mqttPort"];
  if (asked !== 0 && asked !== 8883 && asked !== setup.port)
    throw new MoatError("MOSQUITTO_PORT_MISMATCH", `--mqtt-port ${asked} differs from port ${setup.port} that moat mosquitto setup wrote into ${setup.dir}; run setup again to change it`, {
      detail: { asked, configured: setup.port },
    });
  const issuingCas = async () => (await app.ca.list("issuing")).filter((ca) => Date.parse(ca.notAfter) > Date.now());
  return startMosquittoPlane({
    setup,
    binary: findMosquittoBinary(config["broker.mosquitto.bin"]),
    secrets: sealedSecrets(app.meta, app.envelope),
    devices: mosquittoDeviceSource(app),
    policy: app.policy,
    trust: {
      serverTls: async () => {
        const tls = await app.ca.serverTls();
        return { certPem: tls.cert, keyPem: tls.key };
      },
      caBundle: async () => [await app.ca.rootPem(), ...(await issuingCas()).map((ca) => ca.certificatePem)].map((pem) => pem.trimEnd() + "\n").join(""),
      crls: async (resign = []) => {
        const pems: string[] = [];
        for (const ca of await issuingCas()) {
          // A revocation just committed: sign afresh rather than serve a cached CRL that lacks it.
          if (resign.includes(ca.serialHex)) app.pki.crls.markStale(ca.serialHex);
          pems.push(toPem((await app.pki.crls.current(ca.serialHex)).der, "X509 CRL"));
        }
        return pems.join("");
      },
    },
    events: app.securityEvents,
    feed: app.store,
    logger,
  });
}

/** The registry as the Mosquitto data plane reads it (also `moat mosquitto status`). */
export function mosquittoDeviceSource(app: App): DeviceSource {
  const facts = (d: { id: string; status: string; group: string | null; role: string; attributes: Record<string, string> }): DeviceFacts => ({
    id: d.id,
    status: d.status,
    group: d.group,
    role: d.role,
    attributes: d.attributes,
  });
  return {
    get: async (id) => {
      try {
        return facts(await app.devices.get(id));
      } catch (error) {
        if (isMoatError(error, "DEVICE_NOT_FOUND") || isMoatError(error, "DEVICE_ID_INVALID")) return null;
        throw error;
      }
    },
    pages: async function* () {
      for (let after: string | undefined; ; ) {
        const page = await app.devices.list({ limit: MAX_PAGE_ITEMS, ...(after ? { after } : {}) });
        yield page.devices.map(facts);
        if (!page.next) return;
        after = page.next;
      }
    },
    mayConnect: (status) => CONNECTABLE_STATUSES.has(status),
  };
}

/**
 * Detection in this process (docs/detect.md): the engine follows the raw event stream and the broker's
 * traffic port, reads groups, group settings and the firmware inventory from identity, stores what
 * fires as alerts (whose `alert.raised` events respond answers), and exports per-group metrics.
 */
export async function startDetection(app: App, logger: Logger): Promise<DetectionRuntime> {
  const runtime = await DetectionRuntime.start({
    rules: app.detectRules,
    alerts: app.alerts,
    ports: {
      deviceGroup: async (id) => (isDeviceId(id) ? ((await app.devices.get(id).catch(() => null))?.group ?? null) : null),
      groupSettings: () => app.groups.configured(),
      firmwareSecurityVersion: async (id) => (isDeviceId(id) ? ((await app.firmwareInventory.get(id).catch(() => null))?.securityVersion ?? null) : null),
    },
    events: app.audit,
    feed: app.store,
    snapshotPath: join(app.config.dataDir, SNAPSHOT_FILE),
    log: logger,
  });
  const registry = createDetectMetrics(runtime.engine, app.alerts);
  app.metricsSources.push(() => registry.metrics());
  return runtime;
}

/**
 * Detection response in this process: the executor answers `alert.raised` from the raw event stream
 * and re-reads playbooks from the change feed; notifications retry from the delivery queue and reach
 * the broker's alert topic; range bans follow the feed onto this node's listeners.
 */
export async function startResponse(app: App, broker: MoatBroker | null, logger: Logger): Promise<() => Promise<void>> {
  const { executor, notifier } = app.respond;
  const onError = (error: unknown) => logger.error({ err: error }, "respond: a response step failed");
  executor.onError = onError;
  notifier.onError = onError;
  await executor.reload();
  const stops: (() => void)[] = [];
  stops.push(app.store.subscribe((change) => executor.onChange(change)));
  stops.push(app.audit.onEvent((event) => executor.onEvent(event)));
  notifier.attachPublisher(broker ? { publish: (topic, payload) => broker.publish(topic, payload, { qos: 1 }) } : null);
  stops.push(notifier.start());
  if (broker) stops.push(await app.respond.followBans({ banRange: (range, until) => broker.banRange(range, until), unbanRange: (range) => broker.unbanRange(range) }, onError));
  return async () => {
    for (const stop of stops.splice(0)) stop();
    notifier.attachPublisher(null);
  };
}

export function createLogger(config: MoatConfig): Logger {
  return pino({ level: config.logLevel, redact: { paths: ["req.headers.authorization", "*.password", "*.token", "*.secret"], censor: "[redacted]" } }, pino.destination(2));
}
