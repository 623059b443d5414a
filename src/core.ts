/**
 * The core every command shares: config, store and the KEK, with the domain services built on first use.
 * A command that lists devices opens the store and the registry and nothing else: the modules of the
 * heavier services (PKI, policy, firmware, scanner) are imported only when a caller
 * asks for them in `createApp(config, { services })`, and each service is constructed when first touched.
 * Servers live in serve.ts; this file holds wiring only.
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { AuditCheckpoints, AuditKeys, AuditService, auditOrigin, FailureAggregator, fileWitness, httpWitness, type CheckpointWitness } from "./audit/index.js";
import type { MoatConfig } from "./config/index.js";
import { MoatError, isMoatError } from "./errors.js";
import { parseDuration } from "./lib/duration.js";
import type { FirmwareServices } from "./firmware/index.js";
import { DeviceCredentialService, DeviceService, EnrollmentTokenService, FirmwareInventoryService, GroupSettingsService, TokenService } from "./identity/index.js";
import { createKekFile, DataProtection, Envelope, KEK_FILE, KekRotation, kekProviderFromConfig, pkcs11ConfigFrom, TokenSigningKeyVault } from "./keys/index.js";
import type { CaKeyStorage, CaRegistry, KeyType, Pki, TokenCaKeys } from "./pki/index.js";
import type { PolicyService } from "./policy/index.js";
import type { ScanService } from "./scanner/index.js";
import type { ActionName, RespondServices } from "./respond/index.js";
import type { InstallationFacts, PostureService } from "./posture/index.js";
import type { ComplianceService } from "./compliance/index.js";
import { DEFAULT_HEARTBEAT_MS, SessionService } from "./sessions/index.js";
import type { AlertService, DetectRuleService } from "./detect/index.js";
import {
  AuditRepository,
  caRegistryStore,
  detectStore,
  firmwareStore,
  identityStore,
  KyselySealedBlobStore,
  KyselySessionRepository,
  MetaRepository,
  postureStore,
  complianceStore,
  pkiStore,
  policyStore,
  respondStore,
  scannerStore,
  SQLITE_FILE,
  Store,
} from "./store/index.js";

export interface App {
  readonly config: MoatConfig;
  readonly store: Store;
  readonly envelope: Envelope;
  readonly audit: AuditService;
  /** The Ed25519 audit key: signs checkpoints, and anything else this installation must vouch for (reports). */
  readonly auditKeys: AuditKeys;
  /** Signed checkpoints of the audit log and inclusion proofs. */
  readonly auditCheckpoints: AuditCheckpoints;
  /**
   * Where enforcement points emit their standalone events: failures of unauthenticated peers
   * (`auth.failed`) are aggregated on the way to the log; live listeners still see each one.
   */
  readonly securityEvents: FailureAggregator;
  readonly devices: DeviceService;
  /** Per-group settings (allowed source networks, silence window, minimum firmware security version). */
  readonly groups: GroupSettingsService;
  /** The firmware each device last reported running (OTA client or device SDK). */
  readonly firmwareInventory: FirmwareInventoryService;
  readonly tokens: TokenService;
  /** One-time EST enrollment tokens (the PKI redeems them). */
  readonly enrollmentTokens: EnrollmentTokenService;
  readonly meta: MetaRepository;
  readonly trustDomain: string;
  /** Base URL for CRL/OCSP/caIssuers links. */
  readonly publicUrl: string;
  /** True when the database answers (readiness). */
  ready(): Promise<boolean>;
  /** Prometheus text from components (broker, PKI, …), appended to /metrics. */
  readonly metricsSources: (() => Promise<string> | string)[];
  /** Encryption at rest for applications: records and files under the KEK provider. */
  readonly dataProtection: DataProtection;
  /** KEK rotation, status and retirement over every envelope in the store. */
  readonly kekRotation: KekRotation;
  // --- services whose modules load on request (CreateAppOptions.services) ---
  /** Roles, assignments, device and operator decisions; also the broker's Decider and the API's operator authorization. */
  readonly policy: PolicyService;
  /** Device certificates, CRL, OCSP, EST enrollment. */
  readonly pki: Pki;
  /** The CA hierarchy (the same registry the PKI signs with). */
  readonly ca: CaRegistry;
  /** Device JWT credentials: registered public keys and rotating HMAC secrets (the broker reads them through its directory). */
  readonly deviceCredentials: DeviceCredentialService;
  /** Firmware signing keys, the TUF repository and OTA campaigns. */
  readonly firmware: FirmwareServices;
  /** Port scans, service checks and their stored findings. */
  readonly scans: ScanService;
  /** Live MQTT sessions (who is connected now, from where, with which credential, on which node) and client-id takeovers. */
  readonly sessions: SessionService;
  /** Response playbooks, the executor and its undo, notification targets and deliveries, incidents. */
  readonly respond: RespondServices;
  /** Posture checks over the installation's own data, their stored runs and suppressions (needs `pki` and `policy` too). */
  readonly posture: PostureService;
  /** Control catalogues, signed compliance reports and attestations (needs `pki`, `policy` and `posture` too). */
  readonly compliance: ComplianceService;
  /** Detection's alerts: stored, de-duplicated, acknowledged and resolved (on request: `detect`). */
  readonly alerts: AlertService;
  /** Detection rules in force: the built-ins and the stored YAML set (on request: `detect`). */
  readonly detectRules: DetectRuleService;
  close(): Promise<void>;
}

/** The services whose modules are loaded only when a command asks for them. */
export const SERVICES = ["policy", "pki", "firmware", "scans", "respond", "posture", "compliance", "detect"] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface CreateAppOptions {
  /**
   * Apply pending migrations before anything else. Only `moat init`, `moat migrate`, `moat serve` and
   * `moat start` do: a read-only command from another version must never change a shared schema.
   * It also creates the audit key of an installation made before audit keys existed.
   */
  migrate?: boolean;
  /** The services this caller uses; touching any other one is a programming error. Default: all of them. */
  services?: readonly ServiceName[];
}

const KEK_CHECK_PLAINTEXT = "moat-kek-check-v1";
const KEK_CHECK_AAD = "meta:kek-check";

/** Whether the KEK lives in the data dir's kek.key (not in the environment or a token). */
function usesKekFile(config: MoatConfig): boolean {
  return !config.masterKey && config["keys.provider"] === "file";
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

/** The shortest `pki.certLifetime`: enough for a TLS handshake and an EST round trip, short enough for renewal tests. */
const MIN_CERT_LIFETIME_MS = 10_000;

/** `pki.certLifetime` (a duration, src/lib/duration.ts) → milliseconds, within 10 s .. `pki.maxCertDays`. */
function certLifetimeMs(text: string | null, maxDays: number): number | undefined {
  if (text === null) return undefined;
  let ms: number;
  try {
    ms = parseDuration(text, "pki.certLifetime");
  } catch (error) {
    throw new MoatError("CONFIG_INVALID", (error as Error).message, { cause: error });
  }
  if (ms < MIN_CERT_LIFETIME_MS || ms > maxDays * 86_400_000)
    throw new MoatError("CONFIG_INVALID", `pki.certLifetime ${JSON.stringify(text)} is outside 10s .. pki.maxCertDays (${maxDays}d)`);
  return ms;
}

/** The domain modules behind the on-request services, imported once per process. */
interface Modules {
  policy?: typeof import("./policy/index.js");
  pki?: typeof import("./pki/index.js");
  firmware?: typeof import("./firmware/index.js");
  scanner?: typeof import("./scanner/index.js");
  respond?: typeof import("./respond/index.js");
  posture?: typeof import("./posture/index.js");
  compliance?: typeof import("./compliance/index.js");
  detect?: typeof import("./detect/index.js");
}

async function loadModules(services: readonly ServiceName[]): Promise<Modules> {
  const wanted = new Set(services);
  const [policy, pki, firmware, scanner, respond, posture, compliance, detect] = await Promise.all([
    wanted.has("policy") ? import("./policy/index.js") : undefined,
    wanted.has("pki") ? import("./pki/index.js") : undefined,
    wanted.has("firmware") ? import("./firmware/index.js") : undefined,
    wanted.has("scans") ? import("./scanner/index.js") : undefined,
    wanted.has("respond") ? import("./respond/index.js") : undefined,
    wanted.has("posture") ? import("./posture/index.js") : undefined,
    wanted.has("compliance") ? import("./compliance/index.js") : undefined,
    wanted.has("detect") ? import("./detect/index.js") : undefined,
  ]);
  return { policy, pki, firmware, scanner, respond, posture, compliance, detect };
}

/** Opens an initialised installation. */
export async function createApp(config: MoatConfig, options: CreateAppOptions = {}): Promise<App> {
  const services = options.services ?? SERVICES;
  const [store, modules] = await Promise.all([
    Store.open({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, mustExist: true, feedPollMs: config["feed.pollMs"] }),
    loadModules(services),
  ]);
  let opened: App | undefined;
  try {
    if (options.migrate) await store.migrate();
    else await store.assertSchemaCurrent();
    const meta = new MetaRepository(store.db);
    const trustDomain = await meta.get("trust_domain");
    const kekCheck = await meta.get("kek_check");
    if (!trustDomain || !kekCheck) throw new MoatError("DATA_DIR_NOT_INITIALIZED", `the database (${store.describe}) has not been initialised: run moat init`);
    const envelope = new Envelope(kekProviderFromConfig(config));
    try {
      await envelope.open(Buffer.from(kekCheck, "base64"), KEK_CHECK_AAD);
    } catch (error) {
      if (isMoatError(error, "KEK_MISMATCH") || isMoatError(error, "ENVELOPE_DECRYPT_FAILED"))
        throw new MoatError("KEK_MISMATCH", "the configured KEK does not open this installation's secrets (wrong kek.key or MOAT_MASTER_KEY); nothing was decrypted", { cause: error });
      throw error;
    }
    const app = wire(config, store, envelope, meta, trustDomain, modules, (await meta.get("public_url")) || null);
    opened = app;
    if (options.migrate) await app.auditKeys.ensure();
    // The API authorises with the compiled roles, so they are loaded before anything is served.
    if (services.includes("policy")) await app.policy.reload();
    // CA keys in a token are found (and matched to their certificate) at start, not at the first signing.
    if (services.includes("pki") && config["keys.provider"] === "pkcs11") await app.pki.issuers.current();
    return app;
  } catch (error) {
    // app.close also ends the token sessions (KEK, CA keys).
    await (opened ? opened.close() : store.close()).catch(() => {});
    throw error;
  }
}

/** A value built on first use and then kept. */
function lazy<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}

/** Where checkpoints are copied besides the store (audit.witnessFile, audit.witnessUrl). */
function checkpointWitnesses(config: MoatConfig): CheckpointWitness[] {
  const witnesses: CheckpointWitness[] = [];
  if (config["audit.witnessFile"]) witnesses.push(fileWitness(config["audit.witnessFile"]));
  if (config["audit.witnessUrl"]) witnesses.push(httpWitness(config["audit.witnessUrl"]));
  return witnesses;
}

/**
 * The base URL for CRL/OCSP/caIssuers links written into certificates: the configured one (flag,
 * environment, moat.yaml), else the one `moat init` wrote into the CA certificates, else the PKI port
 * on loopback.
 */
function publicUrlOf(config: MoatConfig, initUrl: string | null): string {
  return config.publicUrl ?? initUrl ?? `http://127.0.0.1:${config.pkiPort}`;
}

function wire(config: MoatConfig, store: Store, envelope: Envelope, meta: MetaRepository, trustDomain: string, modules: Modules, initUrl: string | null): App {
  const auditPort = new AuditRepository(store.db, (fn) => store.transaction((tx) => fn(tx.db)));
  const audit = new AuditService(auditPort);
  // With keys.provider=pkcs11 the audit key and Ed25519/P-256 firmware keys are generated in the token (opened on first use).
  const tokenSigningKeys = config["keys.provider"] === "pkcs11" ? new TokenSigningKeyVault(pkcs11ConfigFrom(config)) : undefined;
  const auditKeys = new AuditKeys(auditPort.keys, envelope, auditOrigin(trustDomain), tokenSigningKeys);
  const auditCheckpoints = new AuditCheckpoints(auditPort, auditKeys, auditOrigin(trustDomain), checkpointWitnesses(config));
  // Events appended inside domain transactions reach live listeners once committed.
  const stops: (() => void)[] = [store.onCommittedEvent((event) => audit.notify(event))];
  const identity = identityStore(store);
  // Which roles a device may hold is the policy domain's rule; its module loads when a role is set.
  const devices = new DeviceService(identity, async (role) => (modules.policy ?? (await import("./policy/index.js"))).isDeviceRoleIn(policyStore(store).roles, role));
  const enrollmentTokens = new EnrollmentTokenService(identity);
  const need = <K extends keyof Modules>(name: K, service: string): NonNullable<Modules[K]> => {
    const loaded = modules[name];
    if (!loaded) throw new Error(`the ${service} service was not requested when this App was created (CreateAppOptions.services)`);
    return loaded as NonNullable<Modules[K]>;
  };

  // --- policy: roles and assignments in the store, compiled in memory, recompiled from the change feed ---
  const policy = lazy((): PolicyService => {
    const { PolicyService } = need("policy", "policy");
    const service = new PolicyService(policyStore(store));
    // A load that fails leaves the service dirty: the next relevant row, check or `reload` loads again,
    // and a broker applying the same row reports the failure itself.
    stops.push(store.subscribe((change) => void service.applyChange(change).catch(() => undefined)));
    return service;
  });
  // --- pki: CA keys made by `moat init --ca-keys pkcs11` live in the token (opened on first use) ---
  let caKeys: TokenCaKeys | undefined;
  const ca = lazy((): CaRegistry => {
    const { CaRegistry, TokenCaKeys } = need("pki", "pki");
    if (config["keys.provider"] === "pkcs11") caKeys = new TokenCaKeys(pkcs11ConfigFrom(config));
    return new CaRegistry(caRegistryStore(store), envelope, caKeys);
  });
  const pki = lazy((): Pki => {
    const { Pki } = need("pki", "pki");
    const service = new Pki({
      // A pending device becomes active with its first certificate, and EST redeems its enrollment token, in the issuing transaction.
      store: pkiStore(store, (uow, id, actor) => devices.setStatusIn(uow, id, "active", actor, "first certificate").then(() => undefined), enrollmentTokens),
      registry: ca(),
      trustDomain,
      publicUrl: app.publicUrl,
      validity: {
        defaultDays: config["pki.certDays"],
        defaultLifetimeMs: certLifetimeMs(config["pki.certLifetime"], config["pki.maxCertDays"]),
        maxDays: config["pki.maxCertDays"],
        groupDays: groupCertDays(config["pki.groupCertDays"]),
      },
      crlValidityMs: config["pki.crlValidityHours"] * 3_600_000,
      rotationGraceMs: config["pki.rotationGraceHours"] * 3_600_000,
      expiryWindowMs: config["pki.expiryWindowDays"] * 86_400_000,
    });
    stops.push(store.subscribe((change) => service.onChange(change)));
    return service;
  });
  // --- firmware: keys in the token where it has the algorithm, else sealed by the envelope; TUF repository in <data dir>/tuf, campaigns over the registry ---
  const firmware = lazy((): FirmwareServices => {
    const { FirmwareKeyService, TufService, CampaignService } = need("firmware", "firmware");
    const port = firmwareStore(store);
    const keys = new FirmwareKeyService(port, envelope, tokenSigningKeys);
    const tuf = new TufService(join(config.dataDir, "tuf"), port, envelope);
    return { keys, tuf, campaigns: new CampaignService({ store: port, keys, tuf, groups: devices }) };
  });
  const deviceCredentials = lazy(() => new DeviceCredentialService(identity, envelope));
  const alerts = lazy((): AlertService => new (need("detect", "detect").AlertService)(detectStore(store)));
  const detectRules = lazy((): DetectRuleService => new (need("detect", "detect").DetectRuleService)(detectStore(store)));
  const scans = lazy(() => new (need("scanner", "scans").ScanService)(scannerStore(store), { allowedTargets: config["scanner.allowedTargets"] }));
  // --- respond: playbooks and the executor, notifications, incidents; containment reaches identity and PKI through ports ---
  const respond = lazy((): RespondServices => {
    const { PlaybookService, ResponseExecutor, Notifier, IncidentService, followBans } = need("respond", "respond");
    const port = respondStore(store);
    const notifier = new Notifier(port, envelope);
    const executor = new ResponseExecutor({
      store: port,
      containment: {
        quarantine: async (deviceId, actor, reason) => {
          const before = await devices.get(deviceId);
          await devices.setStatus(deviceId, "quarantined", actor, reason);
          return { from: before.status };
        },
        restore: async (deviceId, status, actor, reason) => {
          const current = await devices.get(deviceId);
          // Only a device still in the quarantine this action put it in goes back; anything else was an operator's later decision.
          if (current.status !== "quarantined")
            throw new MoatError("RESPOND_UNDO_NOT_APPLICABLE", `device ${deviceId} is ${current.status} now, not quarantined; its status was left as it is`);
          await devices.setStatus(deviceId, status as never, actor, reason);
        },
      },
      revoker: () => ({
        revokeDevice: async (deviceId, actor) => (await pki().certificates.revokeDevice(deviceId, "keyCompromise", actor)).map((c) => c.serialHex),
      }),
      notifier,
      // Detection rules carry their default actions (credential stuffing: ban-range); the alert itself is detect's own.
      ruleDefaults: (rule) => (modules.detect ? (detectRules().defaultActionsOf(rule).filter((a) => a !== "alert") as ActionName[]) : []),
    });
    const incidents = new IncidentService(port, { scan: (afterSeq, limit) => audit.entriesAfter(afterSeq, limit), headSeq: () => audit.headSeq() });
    return { playbooks: new PlaybookService(port), executor, notifier, incidents, followBans: (target, onError) => followBans(port, store, target, onError) };
  });
  const dataProtection = lazy(() => new DataProtection(envelope));
  const kekRotation = lazy(
    () =>
      new KekRotation(envelope, new KyselySealedBlobStore(store.db, store.dialect), {
        load: async () => {
          const text = await meta.get("kek_rotation");
          return text ? JSON.parse(text) : null;
        },
        save: async (state) => {
          await meta.set("kek_rotation", state ? JSON.stringify(state) : "");
          // A rotation that finished (no state left) makes a new KEK current: posture's kek-not-rotated reads this.
          if (!state) await meta.set("kek_rotated_at", new Date().toISOString());
        },
      }),
  );

  const groups = new GroupSettingsService(identity);
  // --- posture: checks over every domain's data; the facts that are not in the store come from their owners here ---
  const postureFacts = (): InstallationFacts => {
    const pkiModule = need("pki", "pki");
    return {
      settings: {
        expiryWindowDays: config["pki.expiryWindowDays"],
        certificateMaxAgeDays: config["posture.certificateMaxAgeDays"],
        kekMaxAgeDays: config["posture.kekMaxAgeDays"],
        neverSeenGraceDays: config["posture.neverSeenGraceDays"],
        scanMaxAgeDays: config["posture.scanMaxAgeDays"],
        sessionStaleMs: DEFAULT_HEARTBEAT_MS * 4,
        plaintextListener: config["broker.enabled"] && config["broker.mqttPlainPort"] !== null ? { port: config["broker.mqttPlainPort"] } : null,
        logLevel: config.logLevel,
      },
      lint: () => policy().lint(),
      auditChain: async () => {
        const verified = await audit.verify();
        return { ok: verified.ok, entries: verified.entries, ...(verified.problem ? { problem: verified.problem } : {}), firstBadSeq: verified.firstBadSeq ?? null };
      },
      kek: async () => ({
        provider: envelope.kekProvider.kind,
        version: (await envelope.kekProvider.current()).version,
        since: (await meta.get("kek_rotated_at")) || (await meta.get("initialized_at")) || null,
      }),
      segmentation: async () => {
        const policyFile = config["segmentation.policyFile"];
        const compiledFile = config["segmentation.compiledFile"];
        if (!policyFile || !compiledFile) return null;
        const network = await import("./network/index.js");
        try {
          const expected = network.compileNftables(network.loadPolicy(network.readTextFile(policyFile, network.MAX_POLICY_BYTES, "segmentation policy"), policyFile));
          if (!existsSync(compiledFile)) return { policyFile, compiledFile, upToDate: false, problem: "the compiled ruleset does not exist" };
          const compiled = network.readTextFile(compiledFile, 16 * 1024 * 1024, "compiled ruleset");
          return compiled.trim() === expected.trim() ? { policyFile, compiledFile, upToDate: true } : { policyFile, compiledFile, upToDate: false, problem: "the compiled ruleset differs from what the policy compiles to now" };
        } catch (error) {
          return { policyFile, compiledFile, upToDate: false, problem: error instanceof Error ? error.message : String(error) };
        }
      },
      groupSettings: async () =>
        new Map(
          (await groups.list()).map((g) => [
            g.group,
            {
              ...(g.allowedCidrs?.length ? { allowedCidrs: g.allowedCidrs } : {}),
              ...(g.silenceWindowMs !== null ? { silenceWindowMs: g.silenceWindowMs } : {}),
              ...(g.minSecurityVersion !== null ? { minFirmwareSecurityVersion: g.minSecurityVersion } : {}),
            },
          ]),
        ),
      keyFacts: {
        certificate: (der) => pkiModule.certificateKeyFacts(der),
        spkiPem: (pem) => pkiModule.publicKeyFacts(pkiModule.fromPem(pem, "PUBLIC KEY") ?? Buffer.alloc(0)),
        weakness: (facts) => pkiModule.weakKeyReason(facts),
      },
    };
  };
  const posture = lazy((): PostureService => new (need("posture", "posture").PostureService)({ store: postureStore(store), facts: postureFacts() }));
  // --- compliance: catalogues evaluated over posture runs, configuration facts and attestations; reports signed with the audit key ---
  const compliance = lazy((): ComplianceService => {
    const { ComplianceService, configFacts } = need("compliance", "compliance");
    return new ComplianceService({
      store: complianceStore(store),
      posture: { latest: () => posture().latest(), run: (o) => posture().run(o) },
      signer: () => auditKeys.signer(),
      verifierKey: () => auditKeys.verifierKey(),
      facts: {
        installation: { trustDomain, manufacturer: config["compliance.manufacturer"], supportPeriodEnd: config["compliance.supportPeriodEnd"], reportingContact: config["compliance.reportingContact"] },
        config: async () => {
          const [keys, latest] = await Promise.all([store.db.selectFrom("firmware_keys").select((eb) => eb.fn.countAll().as("n")).executeTakeFirst(), posture().latest()]);
          return configFacts({
            now: Date.now(),
            supportPeriodEnd: config["compliance.supportPeriodEnd"],
            reportingContact: config["compliance.reportingContact"],
            firmwareKeys: Number(keys?.n ?? 0),
            witnessFile: config["audit.witnessFile"],
            witnessUrl: config["audit.witnessUrl"],
            lastPostureRunAt: latest?.runAt ?? null,
            postureIntervalMinutes: config["posture.intervalMinutes"],
            keysProvider: config["keys.provider"],
            brokerAuthFailureLimit: config["broker.authFailureLimit"],
            brokerBanSeconds: config["broker.banSeconds"],
            brokerMessagesPerSecond: config["broker.messagesPerSecond"],
            brokerMaxPayloadBytes: config["broker.maxPayloadBytes"],
            apiAuthFailureLimit: config["api.authFailureLimit"],
            apiAuthFailureWindowSeconds: config["api.authFailureWindowSeconds"],
          });
        },
      },
    });
  });

  const securityEvents = new FailureAggregator(audit);
  const app: App = {
    config,
    store,
    envelope,
    audit,
    auditKeys,
    auditCheckpoints,
    securityEvents,
    devices,
    groups,
    firmwareInventory: new FirmwareInventoryService(identity),
    tokens: new TokenService(identity, (role) => policy().isOperatorRole(role)),
    enrollmentTokens,
    meta,
    trustDomain,
    sessions: new SessionService(new KyselySessionRepository(store.db)),
    publicUrl: publicUrlOf(config, initUrl),
    get policy() {
      return policy();
    },
    get pki() {
      return pki();
    },
    get ca() {
      return ca();
    },
    get deviceCredentials() {
      return deviceCredentials();
    },
    get firmware() {
      return firmware();
    },
    get alerts() {
      return alerts();
    },
    get detectRules() {
      return detectRules();
    },
    get scans() {
      return scans();
    },
    get respond() {
      return respond();
    },
    get posture() {
      return posture();
    },
    get compliance() {
      return compliance();
    },
    get dataProtection() {
      return dataProtection();
    },
    get kekRotation() {
      return kekRotation();
    },
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
      for (const stop of stops.splice(0)) stop();
      // Summaries still counting are written while the store is open.
      await securityEvents.flush().catch(() => {});
      await store.close();
      caKeys?.close();
      tokenSigningKeys?.close();
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
    const modules = loadModules(SERVICES);
    store = await Store.open({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, feedPollMs: config["feed.pollMs"] });
    if (!config.databaseUrl) created.push(sqlitePath);
    await store.migrate();
    const meta = new MetaRepository(store.db);
    if (await meta.get("trust_domain")) throw new MoatError("DATA_DIR_ALREADY_INITIALIZED", `the database (${store.describe}) is already initialised; moat init changed nothing`);
    if (usesKekFile(config)) created.push(createKekFile(config.dataDir));
    const envelope = new Envelope(kekProviderFromConfig(config, { create: true }));
    app = wire(config, store, envelope, meta, options.trustDomain, await modules, null);
    // Every later process writes the same URLs into device certificates unless publicUrl is configured.
    await meta.set("public_url", app.publicUrl);
    await app.ca.initialize({ keyType: options.keyType, trustDomain: options.trustDomain, hostnames: options.hostnames, publicUrl: app.publicUrl, caKeys: options.caKeys ?? "software" }, "init");
    await app.policy.seedBuiltins("init");
    const { token } = await app.tokens.create({ name: "admin", role: "admin" }, "init");
    await app.auditKeys.ensure();
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
