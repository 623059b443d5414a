/**
 * A Moat started inside this process on a temporary data dir and free 127.0.0.1 ports, for
 * `moat demo` and `moat sim --local`. It reads no MOAT_* environment (a newcomer's shell may point at
 * another installation); it is initialised like `moat init` and served like `moat serve`, except that
 * the broker is started on its own so the simulator can restart it. `close` stops everything and
 * removes the data dir.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino, { type Logger } from "pino";
import { loadConfig, type SettingPath } from "../config/index.js";
import { initialize, type App } from "../core.js";
import { serializeManifest } from "../firmware/index.js";
import { startMqttBroker, startServers } from "../serve.js";
import type { CampaignView, OtaOperator } from "../sim/index.js";
import { freePort } from "../lib/free-port.js";

export interface LocalMoat {
  app: App;
  dataDir: string;
  apiUrl: string;
  mqttUrl: string;
  pkiUrl: string;
  /** The first admin token of this throwaway installation. */
  adminToken: string;
  /** Moat's CA certificates (PEM), what devices trust. */
  ca: string;
  restartBroker(downMs: number): Promise<void>;
  ota: OtaOperator;
  close(): Promise<void>;
}

export async function startLocalMoat(options: { settings?: Partial<Record<SettingPath, unknown>>; logger?: Logger; trustDomain?: string } = {}): Promise<LocalMoat> {
  const dataDir = mkdtempSync(join(tmpdir(), "moat-local-"));
  const logger = options.logger ?? pino({ level: "silent" });
  let app: App | undefined;
  let servers: Awaited<ReturnType<typeof startServers>> | undefined;
  let broker: Awaited<ReturnType<typeof startMqttBroker>> | undefined;
  const cleanup = async () => {
    await broker?.close().catch(() => undefined);
    await servers?.close().catch(() => undefined);
    await app?.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const [apiPort, pkiPort, mqttPort] = [await freePort(), await freePort(), await freePort()];
    const config = loadConfig({
      env: {},
      flags: {
        dataDir,
        host: "127.0.0.1",
        apiPort,
        pkiPort,
        publicUrl: `http://127.0.0.1:${pkiPort}`,
        "broker.mqttPort": mqttPort,
        // The broker starts apart from startServers (so it can be restarted): GET /v1/info is told where it listens.
        "broker.publicUrl": `mqtts://localhost:${mqttPort}`,
        // Started below on its own, so that it can be restarted without the API.
        "broker.enabled": false,
        logLevel: "silent",
        ...options.settings,
      },
    });
    const initialized = await initialize(config, { trustDomain: options.trustDomain ?? "local.moat", keyType: "ec-p256", hostnames: ["localhost", "127.0.0.1"] });
    app = initialized.app;
    servers = await startServers(app, logger);
    broker = await startMqttBroker(app, logger);
    const running = app;
    const ca = await running.ca.chainPem();
    let released = 0;
    const actor = "local:moat-sim";
    const ota: OtaOperator = {
      async release(group, stages, maxFailureRate) {
        released += 1;
        if (released === 1) {
          await running.firmware.keys.generateSigningKey({ name: "local-signing", actor });
          await running.firmware.tuf.init({ actor });
        }
        const image = join(dataDir, `firmware-${released}.bin`);
        writeFileSync(image, randomBytes(4096));
        const facts = { vendor: "Moat local", hardwareId: "sim-board", version: `1.0.${released}`, securityVersion: released };
        const manifest = serializeManifest(await running.firmware.keys.signImage({ image, actor, facts }));
        return (await running.firmware.campaigns.release({ image, manifest, group, stages, maxFailureRate, actor })).id;
      },
      async status(id): Promise<CampaignView> {
        const c = await running.firmware.campaigns.status(id);
        return {
          status: c.campaign.status,
          pauseReason: c.campaign.pauseReason ?? null,
          stage: c.campaign.stage,
          stages: c.campaign.stages,
          counts: c.counts,
          devices: c.campaign.devices.map((d) => ({ deviceId: d.deviceId, stage: d.stage, status: d.status })),
        };
      },
      async abort(id) {
        await running.firmware.campaigns.abort(id, actor);
      },
    };
    return {
      app: running,
      dataDir,
      apiUrl: servers.apiUrl,
      mqttUrl: `mqtts://localhost:${mqttPort}`,
      pkiUrl: `http://127.0.0.1:${pkiPort}`,
      adminToken: initialized.adminToken,
      ca,
      async restartBroker(downMs) {
        const old = broker;
        broker = undefined;
        await old?.close();
        await new Promise((resolve) => setTimeout(resolve, downMs));
        broker = await startMqttBroker(running, logger);
      },
      ota,
      close: cleanup,
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
