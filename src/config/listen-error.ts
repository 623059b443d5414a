import { MoatError } from "../errors.js";
import { envNameOf } from "./load.js";
import type { SettingPath } from "./schema.js";

const REASONS: Record<string, string> = {
  EADDRINUSE: "the address is already in use (another process, or another Moat, holds the port)",
  EACCES: "permission denied (ports below 1024 need privileges)",
  EADDRNOTAVAIL: "the address is not on this machine",
};

/**
 * A listener that cannot bind, as a coded error that names the setting that chose the port (and its
 * flag and environment variable), so the operator knows what to change. The system error is kept as
 * the cause, never printed as a stack.
 */
export function listenFailed(error: unknown, where: { host: string; port: number; service: string; setting: SettingPath }): MoatError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code ?? "";
  const reason = REASONS[code] ?? (error as Error | undefined)?.message ?? String(error);
  const flag = `--${where.setting.split(".").pop()!.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  return new MoatError(
    "LISTEN_FAILED",
    `cannot listen on ${where.host}:${where.port} for ${where.service}: ${reason}; choose another port with ${flag} (setting ${where.setting}, ${envNameOf(where.setting)})`,
    { cause: error, detail: { host: where.host, port: where.port, setting: where.setting, ...(code ? { errno: code } : {}) } },
  );
}
