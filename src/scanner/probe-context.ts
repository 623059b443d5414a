/** What every service probe needs: the transport, the pacer, the run's signal and its time budgets. */
import type { ConnectionOptions } from "node:tls";
import type { Pacer } from "./pacer.js";
import { SocketSession } from "./socket-session.js";
import type { ScanTransport } from "./transport.js";

export interface ProbeContext {
  transport: ScanTransport;
  pacer: Pacer;
  signal: AbortSignal;
  /** Time to establish a connection (and a TLS handshake). */
  connectTimeoutMs: number;
  /** Time to wait for an answer to something the scanner sent. */
  readTimeoutMs: number;
  /** Time to wait for a service that speaks first (Telnet, SSH, FTP). */
  bannerWaitMs: number;
  /** Extra trust anchors (PEM) beside the system roots, e.g. a fleet's private CA. */
  trustedCa: string[];
}

/** One service: where it is, and the TLS options when it sits inside TLS. */
export interface Endpoint {
  address: string;
  port: number;
  /** The name the operator gave, for SNI and certificate name checks. */
  hostname?: string;
  tls?: ConnectionOptions;
}

/**
 * Client TLS settings that can talk to old servers too: the scanner must reach a TLS 1.0 device
 * to report it, so the OpenSSL security level is lowered on the scanner's own client side only.
 */
export function permissiveTls(endpoint: { hostname?: string }): ConnectionOptions {
  return {
    minVersion: "TLSv1",
    ciphers: "ALL:@SECLEVEL=0",
    // SNI carries DNS names only (RFC 6066 §3), never an address.
    ...(endpoint.hostname ? { servername: endpoint.hostname } : {}),
  };
}

/**
 * Opens a session to `endpoint` inside a pacer slot, runs `fn`, and always closes. Resolves null
 * when the connection cannot be made or the run was aborted.
 */
export async function withSession<T>(ctx: ProbeContext, endpoint: Endpoint, fn: (session: SocketSession) => Promise<T>): Promise<T | null> {
  const result = await ctx.pacer.run(async () => {
    let session: SocketSession;
    try {
      session = await SocketSession.open(ctx.transport, {
        address: endpoint.address,
        port: endpoint.port,
        timeoutMs: ctx.connectTimeoutMs,
        signal: ctx.signal,
        ...(endpoint.tls ? { tls: endpoint.tls } : {}),
      });
    } catch {
      return null;
    }
    try {
      return await fn(session);
    } finally {
      session.close();
    }
  });
  return result ?? null;
}
