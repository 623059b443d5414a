import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { isMoatError } from "../errors.js";
import { assertSafeTargetPath } from "./target-path.js";

export interface TufHandlerOptions {
  /** The repository directory (with `metadata/` and `targets/`). */
  dir: string;
  /** URL prefix, `/tuf/` by default. */
  prefix?: string;
  /** Called before `timestamp.json` is served, e.g. to re-sign it when close to expiry. */
  beforeTimestamp?: () => Promise<unknown>;
}

/**
 * A read-only request handler for a TUF repository: `GET {prefix}metadata/<file>` and
 * `GET {prefix}targets/<path>`. Returns false when the URL is not under the prefix, so it can sit
 * in front of other handlers. Paths are checked segment by segment; nothing outside the
 * repository can be named. With consistent snapshots every file but `timestamp.json` (and the
 * newest root, which clients probe by version) never changes, so those may be cached.
 */
export function createTufHandler(options: TufHandlerOptions): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const prefix = options.prefix ?? "/tuf/";
  return async (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    if (!url.pathname.startsWith(prefix)) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return true;
    }
    const file = resolveFile(options.dir, url.pathname.slice(prefix.length));
    if (!file) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return true;
    }
    if (file.mutable && options.beforeTimestamp) await options.beforeTimestamp().catch(() => undefined);
    const info = await stat(file.path).catch(() => undefined);
    if (!info?.isFile()) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return true;
    }
    res.writeHead(200, {
      "content-type": file.path.endsWith(".json") ? "application/json" : "application/octet-stream",
      "content-length": info.size,
      "cache-control": file.mutable ? "no-store" : "public, max-age=300",
      "x-content-type-options": "nosniff",
    });
    if (req.method === "HEAD") {
      res.end();
      return true;
    }
    await new Promise<void>((resolve) => {
      const stream = createReadStream(file.path);
      stream.on("error", () => {
        res.destroy();
        resolve();
      });
      res.on("close", resolve);
      stream.pipe(res);
    });
    return true;
  };
}

/** Maps a URL path below the prefix to a repository file, or undefined when it names none. */
export function resolveFile(dir: string, rest: string): { path: string; mutable: boolean } | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rest);
  } catch {
    return undefined;
  }
  const slash = decoded.indexOf("/");
  const area = decoded.slice(0, slash);
  const name = decoded.slice(slash + 1);
  if (slash < 0 || (area !== "metadata" && area !== "targets")) return undefined;
  try {
    assertSafeTargetPath(name);
  } catch (error) {
    if (isMoatError(error, "FIRMWARE_PATH_INVALID")) return undefined;
    throw error;
  }
  if (area === "metadata" && (name.includes("/") || !name.endsWith(".json"))) return undefined;
  return { path: join(dir, area, ...name.split("/")), mutable: area === "metadata" && name === "timestamp.json" };
}
