import { spawn, type ChildProcess } from "node:child_process";
import { REPO_ROOT } from "./cli.js";

export interface ServeProcess {
  child: ChildProcess;
  /** Everything written to stderr so far (with MOAT_LOG_LEVEL=warn: the start line and warnings). */
  stderr(): string;
  /** Resolves once the API listens; rejects if the process exits first. */
  ready: Promise<void>;
}

/** `moat serve ARGS` from the built CLI on ports chosen by the system (API and MQTT), logging warnings. */
export function spawnServe(args: string[]): ServeProcess {
  const child = spawn(process.execPath, [`${REPO_ROOT}dist/cli/bin.js`, "serve", ...args, "--api-port", "0", "--mqtt-port", "0"], {
    env: { ...process.env, MOAT_LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  const ready = new Promise<void>((resolve, reject) => {
    child.stderr!.on("data", (d) => {
      stderr += d;
      if (stderr.includes("API on")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`moat serve exited with ${code}: ${stderr}`)));
  });
  return { child, stderr: () => stderr, ready };
}
