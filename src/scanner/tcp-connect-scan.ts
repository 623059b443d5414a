/**
 * TCP connect scan (what `nmap -sT` does): a full three-way handshake per port, closed again with a
 * reset so no TIME_WAIT is left behind. A connection refused (RST) is "closed"; no answer within
 * the per-port timeout, or an unreachable host, is "filtered"; only "open" ports are reported.
 *
 * A full-range scan is 65,535 connections, so the hot path is callback-driven: no promise, timer or
 * stream object per port. Timeouts are enforced by one sweep over a FIFO of deadlines.
 */
import { Socket } from "node:net";
import type { Pacer } from "./pacer.js";

export type PortVerdict = "open" | "closed" | "filtered";

/** Probes ports; one session per scan shares the timeout sweep. */
export interface PortConnector {
  readonly kind: string;
  open(timeoutMs: number): PortProbeSession;
}

export interface PortProbeSession {
  /** Starts one connection attempt; `done` is called exactly once. */
  probe(address: string, family: 4 | 6, port: number, done: (verdict: PortVerdict) => void): void;
  /** Cancels whatever is still pending (each reports "filtered") and stops the sweep. */
  close(): void;
}

interface Pending {
  deadline: number;
  cancel: (() => void) | null;
}

/** Deadlines in start order; a periodic sweep cancels the ones that have passed. */
class TimeoutSweep {
  private queue: Pending[] = [];
  private head = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly timeoutMs: number) {
    this.timer = setInterval(() => this.sweep(performance.now()), Math.max(10, Math.min(250, timeoutMs / 4)));
    this.timer.unref();
  }

  add(cancel: () => void): Pending {
    const entry: Pending = { deadline: performance.now() + this.timeoutMs, cancel };
    this.queue.push(entry);
    return entry;
  }

  private sweep(now: number): void {
    while (this.head < this.queue.length && this.queue[this.head]!.deadline <= now) {
      const entry = this.queue[this.head++]!;
      const cancel = entry.cancel;
      entry.cancel = null;
      cancel?.();
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.sweep(Number.POSITIVE_INFINITY);
  }
}

/**
 * A connection from an ephemeral port to the same port on the same loopback address connects to
 * itself (TCP simultaneous open, RFC 793 §3.4); that is not a listening service.
 */
function isSelfConnect(localAddress: string | undefined, localPort: number | undefined, address: string, port: number): boolean {
  return localPort === port && localAddress === address;
}

/** Portable connector over `net.Socket`. */
export const socketConnector: PortConnector = {
  kind: "socket",
  open(timeoutMs) {
    const sweep = new TimeoutSweep(timeoutMs);
    return {
      probe(address, _family, port, done) {
        const socket = new Socket();
        let settled = false;
        const finish = (verdict: PortVerdict) => {
          if (settled) return;
          settled = true;
          pending.cancel = null;
          socket.removeAllListeners();
          socket.on("error", () => undefined);
          if (verdict === "open") socket.resetAndDestroy();
          else socket.destroy();
          done(verdict);
        };
        const pending = sweep.add(() => finish("filtered"));
        socket.once("connect", () => finish(isSelfConnect(socket.localAddress, socket.localPort, address, port) ? "closed" : "open"));
        socket.once("error", (error: NodeJS.ErrnoException) => finish(error.code === "ECONNREFUSED" ? "closed" : "filtered"));
        socket.connect({ host: address, port });
      },
      close: () => sweep.close(),
    };
  },
};

interface NativeTcpHandle {
  connect(req: NativeConnectRequest, address: string, port: number): number;
  connect6(req: NativeConnectRequest, address: string, port: number): number;
  getsockname(out: { address?: string; port?: number }): number;
  reset?(callback?: () => void): number;
  close(callback?: () => void): void;
}
interface NativeConnectRequest {
  oncomplete: (status: number) => void;
}
interface TcpWrapBinding {
  TCP: new (type: number) => NativeTcpHandle;
  TCPConnectWrap: new () => NativeConnectRequest;
  constants: { SOCKET: number };
}

const UV_ECONNREFUSED = -111;

/**
 * Connector on Node's libuv TCP handle directly, without the stream machinery of `net.Socket`.
 * Per-socket JavaScript overhead dominates a full-range scan: on loopback this path is several
 * times faster than `net.Socket`, which is what lets a connect scan keep pace with nmap. It uses
 * the undocumented `tcp_wrap` binding, so it is feature-detected, `socketConnector` is the
 * fallback, and the nmap agreement test runs both.
 */
export function nativeConnector(): PortConnector | null {
  let binding: TcpWrapBinding;
  try {
    const loader = (process as unknown as { binding?: (name: string) => unknown }).binding;
    if (typeof loader !== "function") return null;
    binding = loader.call(process, "tcp_wrap") as TcpWrapBinding;
    if (typeof binding.TCP !== "function" || typeof binding.TCPConnectWrap !== "function" || typeof binding.constants?.SOCKET !== "number") return null;
  } catch {
    return null;
  }
  return {
    kind: "native",
    open(timeoutMs) {
      const sweep = new TimeoutSweep(timeoutMs);
      return {
        probe(address, family, port, done) {
          const handle = new binding.TCP(binding.constants.SOCKET);
          const request = new binding.TCPConnectWrap();
          let settled = false;
          const finish = (verdict: PortVerdict) => {
            if (settled) return;
            settled = true;
            pending.cancel = null;
            // An open port is closed with RST (SO_LINGER 0) when the binding offers it, as net.Socket#resetAndDestroy does.
            if (verdict === "open" && typeof handle.reset === "function") handle.reset();
            else handle.close();
            done(verdict);
          };
          const pending = sweep.add(() => finish("filtered"));
          request.oncomplete = (status: number) => {
            if (status !== 0) return finish(status === UV_ECONNREFUSED ? "closed" : "filtered");
            const local: { address?: string; port?: number } = {};
            handle.getsockname(local);
            finish(isSelfConnect(local.address, local.port, address, port) ? "closed" : "open");
          };
          const error = family === 6 ? handle.connect6(request, address, port) : handle.connect(request, address, port);
          if (error !== 0) finish(error === UV_ECONNREFUSED ? "closed" : "filtered");
        },
        close: () => sweep.close(),
      };
    },
  };
}

/** The fastest connector available here. */
export function defaultConnector(): PortConnector {
  return nativeConnector() ?? socketConnector;
}

export interface TcpScanJob {
  address: string;
  family: 4 | 6;
}

export interface TcpScanOptions {
  pacer: Pacer;
  connector: PortConnector;
  timeoutMs: number;
  /** Called after each port with the count done so far. */
  onProgress?: (done: number) => void;
}

/** Scans `ports` on every host; returns the open ports per address, ascending. Stops early when the pacer's run is aborted. */
export function scanTcpPorts(hosts: readonly TcpScanJob[], ports: readonly number[], options: TcpScanOptions): Promise<Map<string, number[]>> {
  const open = new Map<string, number[]>(hosts.map((h) => [h.address, []]));
  const total = hosts.length * ports.length;
  const { pacer } = options;
  const session = options.connector.open(options.timeoutMs);
  let next = 0;
  let active = 0;
  let done = 0;
  let waiting = false;
  return new Promise((resolve) => {
    const finishIfIdle = () => {
      if (active > 0 || waiting || (next < total && !pacer.aborted)) return;
      session.close();
      for (const list of open.values()) list.sort((a, b) => a - b);
      resolve(open);
    };
    const start = () => {
      const index = next++;
      const host = hosts[Math.floor(index / ports.length)]!;
      const port = ports[index % ports.length]!;
      active++;
      session.probe(host.address, host.family, port, (verdict) => {
        active--;
        pacer.release();
        if (verdict === "open") open.get(host.address)!.push(port);
        options.onProgress?.(++done);
        launch();
      });
    };
    const launch = () => {
      while (next < total && !waiting && pacer.tryAcquire()) start();
      if (next < total && !waiting && !pacer.aborted) {
        // Out of slots or tokens: one callback when the pacer can grant again.
        waiting = true;
        void pacer.acquire().then((granted) => {
          waiting = false;
          if (granted && next < total) start();
          else if (granted) pacer.release();
          launch();
        });
      }
      finishIfIdle();
    };
    launch();
  });
}
