/**
 * Mosquitto as a child of `moat serve`: started, watched, restarted with back-off after a crash, and
 * never left running after Moat is gone. Its log lines (stderr) go to a callback.
 *
 * Orphan guard: Mosquitto does not watch its parent, so it is started through `sh`, which leaves a
 * watcher behind that reads the stdin pipe Moat holds and then `exec`s Mosquitto under the same pid.
 * When Moat ends in any way (even SIGKILL) the pipe reaches end-of-file and the watcher sends SIGTERM
 * to that pid.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";
import { MoatError } from "../errors.js";

/** Where the binary is looked for after the PATH: the distribution installs it in /usr/sbin. */
const SBIN = ["/usr/sbin", "/usr/local/sbin"];

/** `broker.mosquitto.bin`: a path, or a name looked up on the PATH and then in /usr/sbin. */
export function findMosquittoBinary(bin: string, env: NodeJS.ProcessEnv = process.env): string {
  const executable = (path: string) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (isAbsolute(bin) || bin.includes("/")) {
    if (executable(bin)) return bin;
    throw new MoatError("MOSQUITTO_NOT_FOUND", `broker.mosquitto.bin ${bin} is not an executable file`, { detail: { bin } });
  }
  const dirs = [...(env.PATH ?? "").split(delimiter).filter(Boolean), ...SBIN];
  for (const dir of dirs) if (executable(join(dir, bin))) return join(dir, bin);
  throw new MoatError("MOSQUITTO_NOT_FOUND", `${bin} was not found on the PATH or in ${SBIN.join(", ")}; install the mosquitto package or set broker.mosquitto.bin`, { detail: { bin } });
}

/**
 * The watcher, then Mosquitto itself in the shell's place ($1 binary, $2 config). The pipe is read on
 * fd 3 because sh gives a background job /dev/null as its stdin.
 */
const WRAPPER = 'exec 3<&0; ( while read -r _ <&3; do :; done; kill -TERM $$ 2>/dev/null ) & exec "$1" -c "$2" 3<&-';

export interface SupervisorOptions {
  binary: string;
  conf: string;
  /** Runs before every start (the first and each restart): brings the files Mosquitto reads up to date. */
  prepare: () => Promise<void>;
  /** Each log line Mosquitto writes. */
  onLine: (line: string) => void;
  /** After every start that reached "running" (the first and each restart). */
  onStarted: (info: { pid: number; restart: boolean }) => void;
  /** An unexpected exit (a crash); the supervisor restarts after a back-off. */
  onCrash: (info: { pid: number; code: number | null; signal: string | null; restartInMs: number; planned: boolean }) => void;
  onError: (err: unknown) => void;
}

const READY = /mosquitto version \S+ running/;
const START_TIMEOUT_MS = 15_000;
const MAX_BACKOFF_MS = 10_000;
/** A run that lasted this long resets the back-off. */
const STABLE_MS = 30_000;

export class MosquittoSupervisor {
  private child: ChildProcess | null = null;
  private stopping = false;
  private backoffMs = 250;
  private restartTimer: ReturnType<typeof setTimeout> | null = null;
  private startedAt = 0;
  private starts = 0;
  private lastLines: string[] = [];
  private planned = false;

  constructor(private readonly options: SupervisorOptions) {}

  /** The pid of the running Mosquitto, or null between a crash and its restart. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** The first start; throws MOSQUITTO_START_FAILED with Mosquitto's last lines if it never runs. */
  async start(): Promise<void> {
    await this.options.prepare();
    await this.spawnOnce();
  }

  /** SIGHUP: Mosquitto re-reads its configuration, including the CRL file. */
  reload(): boolean {
    const pid = this.pid;
    if (pid === null) return false;
    try {
      process.kill(pid, "SIGHUP");
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Restarts Mosquitto now: it re-reads its CA file only at start (SIGHUP reloads the CRL, not the CA
   * bundle, in 2.0.11). Sessions are closed and devices reconnect.
   */
  restart(): boolean {
    const child = this.child;
    if (!child || this.stopping || child.exitCode !== null) return false;
    this.planned = true;
    child.kill("SIGTERM");
    return true;
  }

  /** Stops Mosquitto (SIGTERM, then SIGKILL after 5 s) and does not restart it. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    child.stdin?.end();
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  }

  private spawnOnce(): Promise<void> {
    const restart = this.starts > 0;
    this.starts += 1;
    this.lastLines = [];
    const child = spawn("/bin/sh", ["-c", WRAPPER, "moat-mosquitto", this.options.binary, this.options.conf], { stdio: ["pipe", "ignore", "pipe"] });
    this.child = child;
    let buffered = "";
    let ready = false;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (ready) return;
        child.kill("SIGKILL");
        reject(this.startFailed(`did not report running within ${START_TIMEOUT_MS / 1000} s`));
      }, START_TIMEOUT_MS);
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (chunk: string) => {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline).trimEnd();
          buffered = buffered.slice(newline + 1);
          if (line === "") continue;
          this.lastLines.push(line);
          if (this.lastLines.length > 20) this.lastLines.shift();
          this.options.onLine(line);
          if (!ready && READY.test(line)) {
            ready = true;
            clearTimeout(timer);
            this.startedAt = Date.now();
            this.options.onStarted({ pid: child.pid!, restart });
            resolve();
          }
        }
      });
      child.on("error", (err) => {
        clearTimeout(timer);
        if (!ready) reject(this.startFailed(err.message));
        else this.options.onError(err);
      });
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        // Ends the old watcher's pipe at once, so it never signals a pid that has been reused.
        child.stdin?.destroy();
        if (this.child === child) this.child = null;
        if (!ready) {
          reject(this.startFailed(`exited (${signal ?? `code ${code}`})`));
          return;
        }
        if (this.stopping) return;
        const planned = this.planned;
        this.planned = false;
        if (Date.now() - this.startedAt > STABLE_MS) this.backoffMs = 250;
        const delay = planned ? 0 : this.backoffMs;
        if (!planned) this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
        this.options.onCrash({ pid: child.pid!, code, signal, restartInMs: delay, planned });
        this.scheduleRestart(delay);
      });
    });
  }

  private scheduleRestart(delay: number): void {
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.stopping) return;
      this.options
        .prepare()
        .then(() => this.spawnOnce())
        .catch((err: unknown) => {
          this.options.onError(err);
          if (this.stopping) return;
          const next = this.backoffMs;
          this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
          this.scheduleRestart(next);
        });
    }, delay);
  }

  private startFailed(why: string): MoatError {
    return new MoatError("MOSQUITTO_START_FAILED", `Mosquitto ${why}; its last lines: ${this.lastLines.slice(-5).join(" | ") || "(none)"}`, { detail: { lines: this.lastLines.slice(-10) } });
  }
}
