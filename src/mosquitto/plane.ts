/**
 * Mosquitto as Moat's data plane: `moat serve` with `broker.mode = mosquitto`. Starts and supervises
 * Mosquitto, writes every device's permissions into its dynamic-security state before the device
 * listener opens, keeps it in step with the change feed over the control channel, closes sessions on
 * revocation and suspension, and turns Mosquitto's log into Moat's events.
 *
 * Ordering: change-feed rows are applied one at a time, each after the policy has taken it in (the same
 * rule as the embedded broker's ChangePipeline). The restrictive part of a row (a revoked certificate,
 * a status that may not connect) acts at once on arrival, ahead of the queue. While Mosquitto is down,
 * rows are skipped: the start after it rebuilds the whole state from the store, and a resync after the
 * control channel is back repairs anything that changed in between.
 */
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { BrokerEventSink } from "../broker/index.js";
import type { Change, ChangeFeed } from "../ports.js";
import { writeFileAtomic } from "../lib/atomic-file.js";
import { desiredClient, desiredState, transition } from "./desired.js";
import { checkDrift } from "./drift.js";
import { DynsecAdmin, type DynsecCommand } from "./dynsec-client.js";
import { ADMIN_USERNAME, renderState, type DesiredClient } from "./dynsec-state.js";
import { mqttVersionOf, parseLogLine } from "./log-lines.js";
import { MosquittoSupervisor } from "./process.js";
import type { DevicePolicy, DeviceSource, PlaneLogger, TrustMaterial } from "./ports.js";
import { adminSecretName, mosquittoPaths, type MosquittoSetup } from "./setup.js";
import type { MosquittoSecrets } from "./secrets.js";

export interface MosquittoPlaneDeps {
  setup: MosquittoSetup;
  /** The Mosquitto binary (findMosquittoBinary). */
  binary: string;
  secrets: MosquittoSecrets;
  devices: DeviceSource;
  policy: DevicePolicy;
  trust: TrustMaterial;
  events: BrokerEventSink;
  feed: ChangeFeed;
  logger: PlaneLogger;
}

export interface MosquittoPlane {
  readonly port: number;
  /** The pid of the Mosquitto process now running (null while it restarts). */
  pid(): number | null;
  /** Prometheus text: connects, disconnects, failures, denials, restarts. */
  metrics(): string;
  close(): Promise<void>;
}

const RELOAD_WAIT_MS = 1_000;
/**
 * After a revocation the device's client stays disabled this long before it is enabled again (for its other,
 * valid certificates). Mosquitto logs "Reloading config" before the listener holds the new CRL, and under load a
 * revoked certificate reconnected in that gap (once in five in the bench); a disabled client is refused whatever
 * certificate it shows, so the gap is closed by the client's state rather than by the CRL's timing.
 */
const REVOCATION_HOLD_MS = 3_000;

interface LiveSession {
  /** The connection's own id (`data.session` of its events, which the live-session record keys on). */
  session: string;
  deviceId: string;
  address: string;
  connectedAt: number;
}

export async function startMosquittoPlane(deps: MosquittoPlaneDeps): Promise<MosquittoPlane> {
  const { setup, logger } = deps;
  const paths = mosquittoPaths(setup.dir);
  const password = (await deps.secrets.get(adminSecretName(setup.dir))).toString("utf8");
  const owner = mosquittoOwner();

  /** What Mosquitto holds per device, as far as this process last set it. */
  let applied = new Map<string, DesiredClient>();
  let up = false;
  let closed = false;
  let admin: DynsecAdmin | null = null;
  let tail: Promise<void> = Promise.resolve();
  const sessions = new Map<string, LiveSession>();
  const closeCauses = new Map<string, string>();
  /** The session a client id's newest connection replaced ("already connected, closing old connection"). */
  const replaced = new Map<string, { session: string; address: string }>();
  /** This plane's node id in session events; a new one per start of moat serve. */
  const nodeId = `mosquitto-${randomUUID()}`;
  let lastConnection: string | null = null;
  let reloadWaiters: (() => void)[] = [];
  const counters = { connects: 0, disconnects: 0, authFailures: 0, restarts: 0, syncErrors: 0, enforcements: 0, enforcementSeconds: 0 };

  const emit = (event: Parameters<BrokerEventSink["emit"]>[0]): void => {
    deps.events.emit(event).catch((err: unknown) => logger.error({ err, type: event.type }, "mosquitto: could not record a security event"));
  };
  const enqueue = (task: () => Promise<void>): Promise<void> => {
    const run = tail.then(task).catch((err: unknown) => {
      counters.syncErrors += 1;
      logger.error({ err }, "mosquitto: a synchronisation step failed");
    });
    tail = run;
    return run;
  };
  const give = (path: string): void => {
    if (owner && existsSync(path)) chownSync(path, owner.uid, owner.gid);
  };

  const writeCrl = async (resign: readonly string[] = []): Promise<void> => {
    await writeFileAtomic(paths.crlFile, await deps.trust.crls(resign), { mode: 0o644 });
    give(paths.crlFile);
  };

  /** SIGHUP, then wait until Mosquitto says it re-read its configuration (CRL included). */
  const reloadConfig = async (): Promise<void> => {
    const reloaded = new Promise<void>((resolve) => {
      reloadWaiters.push(resolve);
      setTimeout(resolve, RELOAD_WAIT_MS).unref();
    });
    if (!supervisor.reload()) return;
    await reloaded;
  };

  const run = async (commands: DynsecCommand[]): Promise<void> => {
    if (commands.length === 0 || !admin) return;
    // "already" answers: a repeated disable, or a kick racing a queued change; the state is what was asked.
    await admin.runOrThrow(commands, (answer) => /already|not found/i.test(answer.error ?? ""));
  };

  /**
   * Ends every session of the device now; the client stays as it was (enabled again if it should be), after
   * `holdMs` when given, so that nothing can reconnect as the device in between.
   */
  const kick = async (deviceId: string, cause: string, holdMs = 0): Promise<void> => {
    closeCauses.set(deviceId, cause);
    const known = applied.get(deviceId);
    if (!known) {
      // Not a device (or one deleted): a client is made only to be able to kick by name.
      await run([{ command: "createClient", username: deviceId }, { command: "disableClient", username: deviceId }, { command: "deleteClient", username: deviceId }]);
      return;
    }
    await run([{ command: "disableClient", username: deviceId }]);
    const enableAgain = async (): Promise<void> => {
      if (!closed && applied.get(deviceId)?.enabled) await run([{ command: "enableClient", username: deviceId }]);
    };
    if (holdMs === 0) return enableAgain();
    setTimeout(() => void enqueue(enableAgain), holdMs).unref();
  };

  const syncDevice = async (deviceId: string): Promise<void> => {
    const facts = await deps.devices.get(deviceId);
    const want = facts ? desiredClient(facts, deps.policy, deps.devices.mayConnect) : null;
    const before = applied.get(deviceId) ?? null;
    const commands = transition(deviceId, before, want);
    // Dynsec ends the sessions of a client whose role changes: say why in device.disconnected.
    if (commands.length > 0 && want?.enabled) closeCauses.set(deviceId, "permissions_changed");
    if (want) applied.set(deviceId, want);
    else applied.delete(deviceId);
    await run(commands);
  };

  const syncAll = async (): Promise<void> => {
    const desired = await desiredState(deps.devices, deps.policy);
    const commands: DynsecCommand[] = [];
    for (const id of new Set([...applied.keys(), ...desired.keys()])) {
      const before = applied.get(id) ?? null;
      const after = desired.get(id) ?? null;
      const step = transition(id, before, after);
      if (step.length > 0 && before?.enabled && after?.enabled) closeCauses.set(id, "permissions_changed");
      commands.push(...step);
    }
    applied = desired;
    await run(commands);
  };

  /** After a (re)start: compare everything with Mosquitto and repair, then follow the feed again. */
  const resync = async (): Promise<void> => {
    if (!admin) return;
    const desired = await desiredState(deps.devices, deps.policy);
    const { report, fixed } = await checkDrift(admin, desired, true);
    applied = desired;
    up = true;
    if (!report.inSync) logger.warn({ fixed, missing: report.missingClients.length, extra: report.extraClients.length, differing: report.differingClients.length + report.differingRoles.length }, "mosquitto: drift repaired after start");
  };

  const applyRow = async (change: Change): Promise<void> => {
    try {
      await deps.policy.applyChange(change);
    } catch (err) {
      logger.error({ err, kind: change.kind, seq: change.seq }, "mosquitto: the policy could not take in a change; devices synced against the policy as it stands");
    }
    if (!up) return;
    switch (change.kind) {
      case "device.created":
      case "device.status":
      case "device.updated":
        return syncDevice(change.subject);
      case "cert.revoked":
        return syncDevice(change.data.deviceId);
      case "role.assignment":
        if (change.data.kind === "device") return syncDevice(change.data.target);
        if (change.data.kind === "group") return syncAll();
        return;
      case "policy.changed":
        return syncAll();
      case "crl.published":
        await writeCrl();
        await reloadConfig();
        return;
      case "ca.changed":
        // Mosquitto 2.0.11 re-reads its CA file only at start (verified: SIGHUP reloads the CRL, not
        // the cafile), so it is restarted; the start writes the new bundle and resynchronises.
        up = false;
        supervisor.restart();
        return;
      default:
        return;
    }
  };

  /** From the commit of a revocation or suspension to Mosquitto having closed the sessions (logged, and summed for /metrics). */
  const observeEnforcement = (change: Change): void => {
    const written = Date.parse(change.createdAt);
    if (!Number.isFinite(written)) return;
    const seconds = Math.max(0, Date.now() - written) / 1000;
    counters.enforcements += 1;
    counters.enforcementSeconds += seconds;
    logger.info({ kind: change.kind, subject: change.subject, ms: Math.round(seconds * 1000) }, "mosquitto: sessions closed after the change was committed");
  };

  /** The restrictive part of a row, on arrival: a revoked certificate or a status that may not connect. */
  const actAtOnce = async (change: Change): Promise<void> => {
    if (!up) return;
    if (change.kind === "cert.revoked") {
      // The CRL Mosquitto checks lists the certificate before the session closes, so it cannot come back.
      await writeCrl([change.data.issuer]);
      await reloadConfig();
      await kick(change.data.deviceId, "cert_revoked", REVOCATION_HOLD_MS);
      observeEnforcement(change);
    } else if (change.kind === "device.status" && !deps.devices.mayConnect(change.data.to)) {
      closeCauses.set(change.subject, `device_${change.data.to}`);
      await run([{ command: "disableClient", username: change.subject }]);
      observeEnforcement(change);
    }
  };

  const onChange = (change: Change): void => {
    if (closed) return;
    actAtOnce(change).catch((err: unknown) => logger.error({ err, kind: change.kind, seq: change.seq }, "mosquitto: could not act on a change at once"));
    void enqueue(() => applyRow(change));
  };

  const endSession = (clientId: string, session: LiveSession, reason: string): void => {
    sessions.delete(clientId);
    counters.disconnects += 1;
    const cause = reason === "administrative" ? (closeCauses.get(session.deviceId) ?? "administrative") : null;
    if (cause) closeCauses.delete(session.deviceId);
    emit({
      type: "device.disconnected",
      severity: cause ? "medium" : "info",
      actor: cause ? "system" : `device:${session.deviceId}`,
      subject: session.deviceId,
      data: { protocol: "mqtt", reason: cause ?? reason, seconds: Math.round((Date.now() - session.connectedAt) / 1000), session: session.session, node: nodeId, dataPlane: "mosquitto" },
    });
  };
  /** Mosquitto ended (crash or stop) without logging each session's end. */
  const endAllSessions = (reason: string): void => {
    for (const [clientId, session] of [...sessions]) endSession(clientId, session, reason);
  };

  const onLine = (line: string): void => {
    const fact = parseLogLine(line);
    if (/^(?:Error|OpenSSL Error|Warning)/.test(line)) logger.warn({ mosquitto: line }, "mosquitto");
    else logger.debug({ mosquitto: line }, "mosquitto");
    switch (fact.kind) {
      case "connection":
        lastConnection = `${fact.address}`;
        return;
      case "reloading": {
        const waiters = reloadWaiters;
        reloadWaiters = [];
        for (const resolve of waiters) resolve();
        return;
      }
      case "connected": {
        if (fact.username === ADMIN_USERNAME) return;
        const deviceId = fact.username ?? fact.clientId;
        const session: LiveSession = { session: randomUUID(), deviceId, address: fact.address, connectedAt: Date.now() };
        const previous = sessions.get(fact.clientId);
        if (previous) endSession(fact.clientId, previous, "taken_over");
        const took = replaced.get(fact.clientId);
        replaced.delete(fact.clientId);
        sessions.set(fact.clientId, session);
        counters.connects += 1;
        emit({
          type: "device.connected",
          severity: "info",
          actor: `device:${deviceId}`,
          subject: deviceId,
          data: {
            protocol: "mqtt",
            listener: "tls",
            method: "certificate",
            address: fact.address,
            clientId: fact.clientId,
            session: session.session,
            node: nodeId,
            dataPlane: "mosquitto",
            mqttVersion: mqttVersionOf(fact.protocol),
            ...(took ? { replaced: took } : {}),
          },
        });
        // A device that may not hold a session (suspended, deleted, not a device) is put out at once;
        // Mosquitto cannot refuse a certificate that is not revoked.
        if (up && !applied.get(deviceId)?.enabled)
          void enqueue(async () => {
            // A device registered a moment ago may connect before its feed row arrives: read it first.
            if (!applied.get(deviceId)?.enabled) await syncDevice(deviceId);
            const known = applied.get(deviceId);
            if (!known?.enabled) await kick(deviceId, known ? "device_not_connectable" : "device_unknown");
          });
        return;
      }
      case "disconnected": {
        const session = sessions.get(fact.clientId);
        if (!session) return;
        if (fact.reason === "taken_over") replaced.set(fact.clientId, { session: session.session, address: session.address });
        endSession(fact.clientId, session, fact.reason);
        return;
      }
      case "tls_failed": {
        counters.authFailures += 1;
        const address = lastConnection ?? "unknown";
        emit({
          type: "auth.failed",
          severity: /revoked/i.test(fact.reason) ? "high" : "medium",
          actor: `address:${address}`,
          subject: "",
          data: { protocol: "mqtt", listener: "tls", reason: /revoked/i.test(fact.reason) ? "cert_revoked" : "tls_handshake", detail: fact.reason.slice(0, 200), address, dataPlane: "mosquitto" },
        });
        return;
      }
      default:
        return;
    }
  };

  /** Before every start: TLS material, CA bundle, CRL and the whole device state, written to disk. */
  const prepare = async (): Promise<void> => {
    mkdirSync(paths.runDir, { recursive: true, mode: 0o700 });
    give(setup.dir);
    give(paths.runDir);
    const tls = await deps.trust.serverTls();
    await writeFileAtomic(paths.certFile, tls.certPem, { mode: 0o644 });
    await writeFileAtomic(paths.keyFile, tls.keyPem, { mode: 0o600 });
    await writeFileAtomic(paths.caFile, await deps.trust.caBundle(), { mode: 0o644 });
    await writeCrl();
    const desired = await desiredState(deps.devices, deps.policy);
    await writeFileAtomic(paths.dynsec, renderState(readFileSync(paths.dynsec, "utf8"), desired.values()), { mode: 0o600 });
    applied = desired;
    for (const path of [paths.certFile, paths.keyFile, paths.caFile, paths.dynsec, join(setup.dir, "mosquitto.db")]) give(path);
  };

  const supervisor = new MosquittoSupervisor({
    binary: deps.binary,
    conf: paths.conf,
    prepare,
    onLine,
    onStarted: ({ pid, restart }) => {
      logger.info({ pid, port: setup.port, restart }, restart ? "mosquitto: restarted" : "mosquitto: running");
      if (restart) {
        counters.restarts += 1;
        void enqueue(async () => {
          await waitConnected();
          await resync();
        });
      }
    },
    onCrash: ({ pid, code, signal, restartInMs, planned }) => {
      up = false;
      endAllSessions(planned ? "data_plane_restarted" : "data_plane_exited");
      if (planned) logger.info({ pid, restartInMs }, "mosquitto: restarting to load a changed CA bundle");
      else logger.error({ pid, code, signal, restartInMs }, "mosquitto: exited unexpectedly; restarting");
    },
    onError: (err) => logger.error({ err }, "mosquitto: supervisor error"),
  });

  const waitConnected = async (): Promise<void> => {
    for (let i = 0; i < 100 && admin && !admin.connected; i++) await new Promise((r) => setTimeout(r, 100));
  };

  // Feed first, then the state: a change committed in between is in both, never in neither.
  const unsubscribe = deps.feed.subscribe(onChange);
  try {
    await deps.policy.reload();
    await supervisor.start();
    admin = await DynsecAdmin.connect(paths.socket, password);
    await enqueue(resync);
    if (!up) throw new Error("the first synchronisation with Mosquitto failed");
  } catch (err) {
    unsubscribe();
    await admin?.close();
    await supervisor.stop();
    rmSync(paths.runDir, { recursive: true, force: true });
    throw err;
  }
  logger.info({ port: setup.port, devices: applied.size, dir: setup.dir }, "mosquitto: devices in place, listening");

  return {
    port: setup.port,
    pid: () => supervisor.pid,
    metrics: () =>
      [
        "# HELP moat_mosquitto_connects_total Device sessions opened on the Mosquitto data plane.",
        "# TYPE moat_mosquitto_connects_total counter",
        `moat_mosquitto_connects_total ${counters.connects}`,
        "# HELP moat_mosquitto_disconnects_total Device sessions ended on the Mosquitto data plane.",
        "# TYPE moat_mosquitto_disconnects_total counter",
        `moat_mosquitto_disconnects_total ${counters.disconnects}`,
        "# HELP moat_mosquitto_auth_failures_total TLS handshakes Mosquitto refused (revoked or unverifiable certificates).",
        "# TYPE moat_mosquitto_auth_failures_total counter",
        `moat_mosquitto_auth_failures_total ${counters.authFailures}`,
        "# HELP moat_mosquitto_restarts_total Restarts of Mosquitto after it exited unexpectedly.",
        "# TYPE moat_mosquitto_restarts_total counter",
        `moat_mosquitto_restarts_total ${counters.restarts}`,
        "# HELP moat_mosquitto_sync_errors_total Synchronisation steps that failed.",
        "# TYPE moat_mosquitto_sync_errors_total counter",
        `moat_mosquitto_sync_errors_total ${counters.syncErrors}`,
        "# HELP moat_mosquitto_enforcement_seconds From the commit of a revocation or suspension to Mosquitto closing the sessions.",
        "# TYPE moat_mosquitto_enforcement_seconds summary",
        `moat_mosquitto_enforcement_seconds_sum ${counters.enforcementSeconds}`,
        `moat_mosquitto_enforcement_seconds_count ${counters.enforcements}`,
        "# HELP moat_mosquitto_sessions Device sessions open on the Mosquitto data plane now.",
        "# TYPE moat_mosquitto_sessions gauge",
        `moat_mosquitto_sessions ${sessions.size}`,
        "",
      ].join("\n"),
    close: async () => {
      if (closed) return;
      closed = true;
      unsubscribe();
      await tail;
      await admin?.close();
      await supervisor.stop();
      endAllSessions("server_shutdown");
      // The listener's key exists only while moat serve runs.
      rmSync(paths.runDir, { recursive: true, force: true });
    },
  };
}

/** When Moat runs as root, Mosquitto drops to its own user and must own the files it reads and writes. */
function mosquittoOwner(): { uid: number; gid: number } | null {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return null;
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const [name, , uid, gid] = line.split(":");
      if (name === "mosquitto") return { uid: Number(uid), gid: Number(gid) };
    }
  } catch {
    // No passwd file: Mosquitto keeps running as root (it does when its user does not exist).
  }
  return null;
}
