/**
 * One MQTT-over-TLS connection of the load generator: a TLS socket with a client certificate, the
 * CONNECT/CONNACK exchange and a packet loop that answers inbound QoS 1 PUBLISHes with PUBACKs
 * (batched per received chunk, so a busy subscriber writes one TLS record per chunk, not per message).
 * Thousands of these live in one process; nothing here allocates per message beyond the chunk.
 */
import { performance } from "node:perf_hooks";
import { connect as tlsConnect, type SecureContext, type TLSSocket } from "node:tls";
import { connackCode, connect, DISCONNECT, PACKET, PacketReader, publishPacketId, subackCode, subscribe, writePuback, type Packet, type ProtocolVersion } from "./frames.js";

/** Where the connections go: loopback only (the benches never aim load anywhere else). */
export interface Target {
  host: "127.0.0.1";
  port: number;
  /** Name the server certificate is checked against. */
  servername: string;
  version: ProtocolVersion;
}

export class ConnectRefused extends Error {
  constructor(readonly code: number) {
    super(`CONNACK refused with code ${code}`);
  }
}

export class LoadConnection {
  private readonly reader = new PacketReader();
  private pendingSuback: ((code: number) => void) | null = null;
  private nextPacketId = 1;
  /** performance.now() when the socket closed (by either side), or null while open. */
  closedAt: number | null = null;
  readonly closed: Promise<number>;
  /** PUBLISHes received (as a subscriber). */
  received = 0;
  /** Called for every received PUBLISH (tests look at topics; the benches only count). */
  onPublish: ((p: Packet) => void) | null = null;
  /** Called for every PUBACK with its packet identifier. */
  onPuback: ((packetId: number) => void) | null = null;
  /** Called once per received chunk, after its packets were handled (lets a publisher refill in one write). */
  onChunkEnd: (() => void) | null = null;

  private constructor(
    readonly socket: TLSSocket,
    readonly clientId: string,
    readonly version: ProtocolVersion,
  ) {
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.closedAt = performance.now();
        resolve(this.closedAt);
      }),
    );
  }

  /** TLS handshake with the device's certificate, CONNECT, CONNACK; rejects on a refusal, an error or after `timeoutMs`. */
  static open(target: Target, context: SecureContext, clientId: string, options: { keepaliveSeconds?: number; timeoutMs?: number } = {}): Promise<LoadConnection> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: target.host, port: target.port, servername: target.servername, secureContext: context, noDelay: true } as never);
      const conn = new LoadConnection(socket, clientId, target.version);
      let settled = false;
      const timer = setTimeout(() => fail(new Error(`no CONNACK within ${options.timeoutMs ?? 30_000} ms`)), options.timeoutMs ?? 30_000);
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(error);
      };
      socket.on("error", fail);
      socket.once("close", () => fail(new Error("closed before CONNACK")));
      socket.once("secureConnect", () => socket.write(connect({ clientId, version: target.version, keepaliveSeconds: options.keepaliveSeconds ?? 0 })));
      socket.on("data", (chunk: Buffer) =>
        conn.reader.push(chunk, (p) => {
          if (settled) return conn.handle(p);
          if (p.type !== PACKET.CONNACK) return fail(new Error(`expected CONNACK, got packet type ${p.type}`));
          const code = connackCode(p.body);
          if (code !== 0) return fail(new ConnectRefused(code));
          settled = true;
          clearTimeout(timer);
          resolve(conn);
        }),
      );
      socket.on("data", () => {
        conn.flushAcks();
        conn.onChunkEnd?.();
      });
    });
  }

  private acks: Buffer | null = null;
  private ackLength = 0;

  private handle(p: Packet): void {
    if (p.type === PACKET.PUBLISH) {
      this.received++;
      this.onPublish?.(p);
      const id = publishPacketId(p);
      if (id !== 0) {
        if (this.acks && this.ackLength + 4 > this.acks.length) this.flushAcks();
        this.acks ??= Buffer.allocUnsafe(4 * 1024);
        this.ackLength = writePuback(this.acks!, this.ackLength, id);
      }
    } else if (p.type === PACKET.PUBACK) this.onPuback?.(p.body.readUInt16BE(0));
    else if (p.type === PACKET.SUBACK) {
      const done = this.pendingSuback;
      this.pendingSuback = null;
      done?.(subackCode(p.body, this.version));
    }
  }

  /** Writes the PUBACKs gathered from one chunk as one TLS record. */
  private flushAcks(): void {
    if (!this.acks || this.ackLength === 0) return;
    if (!this.socket.destroyed) this.socket.write(this.acks.subarray(0, this.ackLength));
    // The written bytes belong to the socket now; the next acks go into a fresh buffer.
    this.acks = null;
    this.ackLength = 0;
  }

  /** SUBSCRIBE one filter; resolves with the SUBACK code (granted QoS, or 0x80+ when refused). */
  subscribe(filter: string, qos: 0 | 1): Promise<number> {
    return new Promise((resolve) => {
      this.pendingSuback = resolve;
      this.socket.write(subscribe(this.takePacketId(), filter, qos, this.version));
    });
  }

  takePacketId(): number {
    const id = this.nextPacketId;
    this.nextPacketId = id === 65535 ? 1 : id + 1;
    return id;
  }

  /** A clean DISCONNECT, then close. */
  async end(): Promise<void> {
    if (this.closedAt !== null) return;
    this.socket.end(DISCONNECT);
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, 2000))]);
    this.socket.destroy();
  }

  /** Drops the connection without DISCONNECT, as a device losing power would. */
  drop(): void {
    this.socket.destroy();
  }
}
