/**
 * A probe's conversation with one service: open (plain or TLS), write, and wait until the bytes
 * received so far satisfy a condition or a deadline passes. Everything is bounded: the time each
 * wait may take and the bytes kept (a hostile service cannot make the scanner buffer without end).
 */
import type { Socket } from "node:net";
import type { ConnectionOptions, TLSSocket } from "node:tls";
import type { ScanTransport } from "./transport.js";

/** At most this much of a service's output is kept per connection. */
const MAX_BUFFERED = 64 * 1024;

export interface OpenOptions {
  address: string;
  port: number;
  timeoutMs: number;
  /** When set, a TLS handshake is made with these options (rejectUnauthorized is forced off: the scanner judges trust itself). */
  tls?: ConnectionOptions;
  signal?: AbortSignal;
}

export class SocketSession {
  private chunks: Buffer[] = [];
  private size = 0;
  private waiter: (() => void) | null = null;
  closed = false;
  /** Raw bytes received and not yet consumed. */
  get buffer(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  private constructor(readonly socket: Socket | TLSSocket) {
    socket.on("data", (chunk: Buffer) => {
      if (this.size < MAX_BUFFERED) {
        const room = MAX_BUFFERED - this.size;
        const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
        this.chunks.push(kept);
        this.size += kept.length;
      }
      this.waiter?.();
    });
    const onEnd = () => {
      this.closed = true;
      this.waiter?.();
    };
    socket.on("end", onEnd);
    socket.on("close", onEnd);
    socket.on("error", onEnd);
  }

  /** Opens a connection; rejects with the socket error or a timeout. */
  static open(transport: ScanTransport, options: OpenOptions): Promise<SocketSession> {
    return new Promise((resolve, reject) => {
      const socket = options.tls
        ? transport.connectTls({ ...options.tls, host: options.address, port: options.port, rejectUnauthorized: false })
        : transport.connectTcp({ host: options.address, port: options.port });
      const timer = setTimeout(() => fail(new Error(`connect to ${options.address}:${options.port} timed out`)), options.timeoutMs);
      const onAbort = () => fail(new Error("scan aborted"));
      options.signal?.addEventListener("abort", onAbort, { once: true });
      function cleanup() {
        clearTimeout(timer);
        options.signal?.removeEventListener("abort", onAbort);
        socket.removeListener("error", fail);
      }
      function fail(error: Error) {
        cleanup();
        socket.destroy();
        reject(error);
      }
      socket.once("error", fail);
      socket.once(options.tls ? "secureConnect" : "connect", () => {
        cleanup();
        resolve(new SocketSession(socket));
      });
    });
  }

  write(data: string | Buffer): void {
    if (!this.closed) this.socket.write(data);
  }

  /**
   * Waits until `done(buffer)` is true (resolves true), or the peer closes or `timeoutMs` passes
   * (resolves false). Never rejects.
   */
  waitFor(done: (buffer: Buffer) => boolean, timeoutMs: number): Promise<boolean> {
    if (done(this.buffer)) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(false), timeoutMs);
      const settle = (result: boolean) => {
        clearTimeout(timer);
        this.waiter = null;
        resolve(result);
      };
      this.waiter = () => {
        if (done(this.buffer)) settle(true);
        else if (this.closed) settle(false);
      };
    });
  }

  /** Drops the first `count` bytes (a parsed message). */
  consume(count: number): void {
    const rest = this.buffer.subarray(count);
    this.chunks = rest.length ? [rest] : [];
    this.size = rest.length;
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}

/** Printable form of a banner: control bytes escaped, at most `max` characters. */
export function printable(data: Buffer, max = 160): string {
  let text = "";
  for (const byte of data.subarray(0, max)) {
    if (byte === 0x0a) text += "\\n";
    else if (byte === 0x0d) text += "\\r";
    else if (byte >= 0x20 && byte < 0x7f) text += String.fromCharCode(byte);
    else text += `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return data.length > max ? `${text}…` : text;
}
