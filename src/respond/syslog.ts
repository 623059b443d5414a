/**
 * Syslog delivery: RFC 5424 messages over TCP with octet-counting framing (RFC 6587 §3.4.1), in
 * plain TCP (loopback only, flagged) or TLS (RFC 5425, which mandates the same framing; the server's
 * certificate is verified against the configured CA and host name).
 */
import { connect as connectTcp, isIP } from "node:net";
import { hostname } from "node:os";
import { connect as connectTls } from "node:tls";
import { MoatError } from "../errors.js";

/** RFC 5424 §6.2.1 numerical severities for Moat's severities. */
const SYSLOG_SEVERITY: Record<string, number> = { critical: 2, high: 3, medium: 4, low: 5, info: 6 };
/** Facility 10, security/authorization messages (RFC 5424 table 1), the one auth logs use. */
export const DEFAULT_FACILITY = 10;
/**
 * The structured-data id of Moat's parameters. A private SD-ID needs an enterprise number (RFC 5424
 * §7.2.2); 32473 is the one RFC 5612 reserves for documentation, used until Moat registers its own.
 */
export const SD_ID = "moat@32473";
const BOM = "\uFEFF";

export interface SyslogMessage {
  severity: string;
  /** The event type, sent as MSGID (at most 32 printable ASCII characters). */
  type: string;
  /** Delivery id, alert id, rule, subject: sent as structured data. */
  params: Record<string, string>;
  /** The JSON body. */
  text: string;
  time?: Date;
}

const printable = (text: string, max: number) => (text.replace(/[^\x21-\x7e]/g, "_").slice(0, max) || "-");
/** RFC 5424 §6.3.3: `"`, `\` and `]` are escaped inside PARAM-VALUE. */
const paramValue = (text: string) => text.replace(/[\\"\]]/g, (c) => `\\${c}`);
const paramName = (text: string) => text.replace(/[^\x21-\x7e]|[= \]"]/g, "_").slice(0, 32);

/** One RFC 5424 message (without framing). */
export function formatSyslog(message: SyslogMessage, facility = DEFAULT_FACILITY, host = hostname()): string {
  const pri = facility * 8 + (SYSLOG_SEVERITY[message.severity] ?? 5);
  const time = (message.time ?? new Date()).toISOString();
  const params = Object.entries(message.params)
    .map(([name, value]) => ` ${paramName(name)}="${paramValue(value)}"`)
    .join("");
  return `<${pri}>1 ${time} ${printable(host, 255)} moat ${process.pid} ${printable(message.type, 32)} [${SD_ID}${params}] ${BOM}${message.text}`;
}

/** RFC 6587 §3.4.1: MSG-LEN SP SYSLOG-MSG, the length in octets. */
export function frameOctetCounted(message: string): Buffer {
  const body = Buffer.from(message, "utf8");
  return Buffer.concat([Buffer.from(`${body.length} `), body]);
}

export interface SyslogTarget {
  host: string;
  port: number;
  transport: "tls" | "tcp";
  /** PEM trust anchors for the server's certificate (TLS); absent: the system's. */
  caPem?: string;
  facility?: number;
  timeoutMs?: number;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.has(host) || (isIP(host) === 4 && host.startsWith("127."));
}

/** Sends framed messages on one connection and resolves once they are written and the connection closed cleanly. */
export function sendSyslog(target: SyslogTarget, messages: readonly string[]): Promise<void> {
  if (target.transport === "tcp" && !isLoopbackHost(target.host))
    throw new MoatError("NOTIFY_TARGET_INVALID", `plain TCP syslog is allowed to loopback only; use --transport tls for ${target.host}`);
  const timeoutMs = target.timeoutMs ?? 10_000;
  return new Promise<void>((resolve, reject) => {
    const socket =
      target.transport === "tls"
        ? connectTls({ host: target.host, port: target.port, servername: isIP(target.host) ? undefined : target.host, ...(target.caPem ? { ca: target.caPem } : {}), minVersion: "TLSv1.2" })
        : connectTcp({ host: target.host, port: target.port });
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`syslog ${target.host}:${target.port} timed out`)));
    socket.once("error", fail);
    socket.once(target.transport === "tls" ? "secureConnect" : "connect", () => {
      socket.end(Buffer.concat(messages.map(frameOctetCounted)));
    });
    socket.once("close", (hadError) => {
      if (settled) return;
      settled = true;
      if (hadError) reject(new Error(`syslog ${target.host}:${target.port} closed with an error`));
      else resolve();
    });
  });
}
