import { userInfo } from "node:os";
import type { Command } from "commander";
import { loadConfig, type MoatConfig, type SettingPath } from "../config/index.js";
import { createApp, type App, type ServiceName } from "../core.js";

/** Global options every command accepts, mapped to settings. */
export interface GlobalOptions {
  dataDir?: string;
  databaseUrl?: string;
  logLevel?: string;
}

/** Flags of a command that map to settings: option name → setting path. */
export type FlagMap = Record<string, SettingPath>;

/** Loads the configuration from the command's flags (plus the program's global flags). */
export function configFrom(command: Command, flagMap: FlagMap = {}): MoatConfig {
  const all = command.optsWithGlobals() as Record<string, unknown>;
  const flags: Partial<Record<SettingPath, unknown>> = {
    dataDir: all.dataDir,
    databaseUrl: all.databaseUrl,
    logLevel: all.logLevel,
  };
  for (const [option, path] of Object.entries(flagMap)) if (all[option] !== undefined) flags[path] = all[option];
  return loadConfig({ flags });
}

/**
 * Opens the installation for one command and closes it afterwards. `services` names the services
 * beyond the registry, tokens, audit and keys that the command uses: only their modules are loaded,
 * so `moat device list` never pays for PKI, policy or the broker.
 */
export async function withApp<T>(command: Command, services: readonly ServiceName[], fn: (app: App) => Promise<T>): Promise<T> {
  const app = await createApp(configFrom(command), { services });
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}

/** The actor recorded in events for CLI actions. */
export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return "cli";
  }
}
