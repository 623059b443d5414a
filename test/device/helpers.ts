// A real `moat serve` (startServers: HTTPS API with EST, PKI endpoints, the MQTT broker) on a fresh
// installation, for the device SDK tests. Ports are chosen by the system; loopback only.
import pino from "pino";
import type { SettingPath } from "../../src/config/index.js";
import type { App } from "../../src/core.js";
import { startServers, type RunningServers } from "../../src/serve.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { tempDir } from "../helpers/temp.js";
import { freePort } from "../../src/lib/free-port.js";


export interface DeviceTestServer {
  app: App;
  /** https://localhost:<port> (the server certificate names localhost and 127.0.0.1). */
  server: string;
  mqttUrl: string;
  /** Moat's root CA, the devices' trust anchor. */
  rootPem: string;
  /** A fresh folder for one device. */
  deviceDir(): string;
  /** Registers a device and returns a one-time enrollment token for it. */
  newDevice(id: string): Promise<string>;
  close(): Promise<void>;
}

export async function startDeviceTestServer(flags: Partial<Record<SettingPath, unknown>> = {}): Promise<DeviceTestServer> {
  const mqttPort = await freePort();
  const t: TestApp = await createTestApp("sqlite", { "broker.mqttPort": mqttPort, apiPort: 0, pkiPort: 0, ...flags });
  let running: RunningServers;
  try {
    running = await startServers(t.app, pino({ level: "silent" }));
  } catch (error) {
    await t.cleanup();
    throw error;
  }
  const folders: { cleanup: () => void }[] = [];
  const apiPort = new URL(running.apiUrl).port;
  return {
    app: t.app,
    server: `https://localhost:${apiPort}`,
    mqttUrl: `mqtts://localhost:${mqttPort}`,
    rootPem: (await t.app.ca.active("root")).certificatePem,
    deviceDir: () => {
      const folder = tempDir("moat-device-");
      folders.push(folder);
      return `${folder.path}/device`;
    },
    newDevice: async (id) => {
      await t.app.devices.create({ id }, "test");
      return (await t.app.enrollmentTokens.create(id, 3_600_000, "test")).token;
    },
    close: async () => {
      await running.close();
      await t.cleanup();
      for (const folder of folders) folder.cleanup();
    },
  };
}

/** Resolves with the next `event` of `emitter`. */
export function nextEvent<T extends unknown[]>(emitter: { once(event: string, listener: (...args: T) => void): unknown }, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (...args: T) => resolve(args)));
}
