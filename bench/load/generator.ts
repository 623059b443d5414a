/**
 * The load generator's driver: forks worker processes (bench/load/worker.ts), gives each a contiguous
 * slice of the devices, runs one operation on all of them at once and gathers their results, including
 * the CPU time each worker spent, so every figure can be read next to the generator's own load.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CpuReport, CredentialsFile, OpName, WorkerOps, WorkerReply } from "./protocol.js";

const WORKER = fileURLToPath(new URL("./worker.ts", import.meta.url));
/** The repository root: `--import tsx` resolves from the working directory. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Writes the device credentials where the workers read them (0600: it holds private keys). */
export function writeCredentials(dir: string, credentials: CredentialsFile): string {
  const path = join(dir, "load-credentials.json");
  writeFileSync(path, JSON.stringify(credentials), { mode: 0o600 });
  return path;
}

/**
 * Spawns `command args` with its open-file limit raised (as far as the hard limit, or beyond it when
 * running as root), for processes that hold thousands of sockets. `ipc` adds Node's IPC channel.
 */
export function spawnWithFdLimit(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; ipc?: boolean; limit?: number; stderr?: "inherit" | "pipe" | "ignore" }): ChildProcess {
  const limit = options.limit ?? 65_536;
  const script = `ulimit -n ${limit} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`;
  return spawn("/bin/sh", ["-c", script, command, ...args], {
    cwd: REPO_ROOT,
    env: options.env ?? process.env,
    stdio: ["ignore", "ignore", options.stderr ?? "inherit", ...(options.ipc ? (["ipc"] as const) : [])],
  });
}

class Worker {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;

  constructor(readonly child: ChildProcess) {
    let ready!: () => void;
    this.ready = new Promise((resolve) => (ready = resolve));
    this.exited = new Promise((resolve) => child.once("exit", () => resolve()));
    child.on("message", (reply: WorkerReply) => {
      if (reply.id === 0) return ready();
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.error !== undefined) waiter?.reject(new Error(`load worker ${child.pid}: ${reply.error}`));
      else waiter?.resolve(reply.result);
    });
    child.once("exit", (code) => {
      for (const waiter of this.pending.values()) waiter.reject(new Error(`load worker ${child.pid} exited with ${code}`));
      this.pending.clear();
    });
  }

  request<K extends OpName>(op: K, args: WorkerOps[K]["args"]): Promise<WorkerOps[K]["result"]> {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ id, op, args });
    });
  }
}

export class LoadGenerator {
  private constructor(private readonly workers: Worker[]) {}

  /** Starts `workers` processes and splits devices [0, deviceCount) of the credentials file between them. */
  static async start(options: { workers: number; credentialsFile: string; deviceCount: number }): Promise<LoadGenerator> {
    const workers = Array.from(
      { length: options.workers },
      () => new Worker(spawnWithFdLimit(process.execPath, ["--import", "tsx", "--max-old-space-size=4096", WORKER], { ipc: true, limit: 65_536 })),
    );
    const generator = new LoadGenerator(workers);
    try {
      await Promise.all(workers.map((w) => w.ready));
      await generator.assign(options.credentialsFile, options.deviceCount);
    } catch (error) {
      await generator.stop();
      throw error;
    }
    return generator;
  }

  /** Gives each worker its contiguous slice of devices [0, deviceCount) of a credentials file. */
  async assign(credentialsFile: string, deviceCount: number): Promise<void> {
    const per = Math.ceil(deviceCount / this.workers.length);
    await Promise.all(this.workers.map((w, i) => w.request("init", { credentialsFile, from: Math.min(deviceCount, i * per), to: Math.min(deviceCount, (i + 1) * per) })));
  }

  get size(): number {
    return this.workers.length;
  }

  get pids(): number[] {
    return this.workers.map((w) => w.child.pid!);
  }

  /** Runs `op` on every worker at once (the same arguments, or arguments per worker index). */
  all<K extends OpName>(op: K, args: WorkerOps[K]["args"] | ((worker: number) => WorkerOps[K]["args"])): Promise<WorkerOps[K]["result"][]> {
    return Promise.all(this.workers.map((w, i) => w.request(op, typeof args === "function" ? args(i) : args)));
  }

  /** Closes the IPC channels (the workers drop their connections and exit), then ends any straggler by its pid. */
  async stop(): Promise<void> {
    for (const w of this.workers) if (w.child.connected) w.child.disconnect();
    await Promise.all(
      this.workers.map((w) =>
        Promise.race([w.exited, new Promise((r) => setTimeout(r, 5000))]).then(() => {
          if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill("SIGKILL");
        }),
      ),
    );
  }
}

/** The generator's CPU over an operation: cores busy on average (1.0 = one core saturated) and per worker. */
export function generatorCpu(results: CpuReport[]): { cores: number; perWorker: number[]; text: string } {
  const perWorker = results.map((r) => (r.wallMs > 0 ? r.cpuMs / r.wallMs : 0));
  const cores = perWorker.reduce((a, b) => a + b, 0);
  return { cores, perWorker, text: `generator ${results.length} proc, ${perWorker.map((p) => `${Math.round(p * 100)}%`).join("+")} CPU` };
}

/** p-th percentile (0-100) of values (nearest rank). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
