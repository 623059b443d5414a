/**
 * The broker's network listeners: MQTT over TLS (always), MQTT over secure WebSockets (optional) and
 * plaintext MQTT on loopback only (optional, flagged as insecure).
 */
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { IncomingMessage } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import { createSecureContext, createServer as createTlsServer, type SecureContextOptions, type Server as TlsServer, type TLSSocket } from "node:tls";
import type { Duplex } from "node:stream";
import { createWebSocketStream, WebSocketServer } from "ws";
import { TLS_SERVER_POLICY } from "../crypto/index.js";
import { listenFailed, type SettingPath } from "../config/index.js";
import { MoatError } from "../errors.js";
import type { BrokerTlsMaterial } from "./ports.js";


/** Node's `crl` option is deliberately not used: revocation is checked against the live view (STACK.md §4). */
export function secureContextOptions(material: BrokerTlsMaterial): SecureContextOptions {
  return {
    key: material.keyPem,
    cert: material.certPem,
    ca: [...material.caPems],
    ...TLS_SERVER_POLICY,
  };
}

/** Refuses unusable material up front (key not matching the certificate, unreadable PEM, no issuing CA). */
export function validateTlsMaterial(material: BrokerTlsMaterial): BrokerTlsMaterial {
  if (material.issuingCaPems.length === 0) throw new MoatError("BROKER_TLS_MATERIAL_INVALID", "no issuing CA certificate to accept device certificates from");
  try {
    createSecureContext(secureContextOptions(material));
  } catch (error) {
    throw new MoatError("BROKER_TLS_MATERIAL_INVALID", `the broker's TLS material cannot be used: ${(error as Error).message}`, { cause: error });
  }
  return material;
}

/** How a connection reached the broker. */
export type ListenerName = "tls" | "wss" | "plain";

export type ConnectionHandler = (stream: Duplex, listener: ListenerName, tls: TLSSocket | null, req?: IncomingMessage) => void;

export interface BoundListener {
  name: ListenerName;
  port: number;
  host: string;
  close(): Promise<void>;
  /** Applies new TLS material without dropping open connections (TLS listeners only). */
  setSecureContext?(material: BrokerTlsMaterial): void;
}

const HANDSHAKE_TIMEOUT_MS = 10_000;

function listen(server: NetServer, port: number, host: string, service: string, setting: SettingPath): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(listenFailed(err, { host, port, service, setting }));
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: NetServer, sockets: Set<Socket>): Promise<void> {
  return new Promise((resolve) => {
    for (const socket of sockets) socket.destroy();
    server.close(() => resolve());
  });
}

function track(server: NetServer, sockets: Set<Socket>, event: "connection" | "secureConnection"): void {
  server.on(event, (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
}

/** MQTT over TLS (port 8883 by IANA). Client certificates are requested, checked after the handshake. */
export async function listenTls(material: BrokerTlsMaterial, host: string, port: number, onConnection: ConnectionHandler, onTlsError: (err: Error) => void): Promise<BoundListener> {
  const server: TlsServer = createTlsServer(
    { ...secureContextOptions(material), requestCert: true, rejectUnauthorized: false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS },
    (socket) => onConnection(socket, "tls", socket),
  );
  const sockets = new Set<Socket>();
  track(server, sockets, "secureConnection");
  server.on("tlsClientError", (err) => onTlsError(err));
  const bound = await listen(server, port, host, "MQTT over TLS", "broker.mqttPort");
  return {
    name: "tls",
    port: bound,
    host,
    close: () => closeServer(server, sockets),
    setSecureContext: (m) => server.setSecureContext(secureContextOptions(m)),
  };
}

/** MQTT over secure WebSockets (subprotocol `mqtt`), with the same TLS and client-certificate checks. */
export async function listenWss(material: BrokerTlsMaterial, host: string, port: number, maxPayloadBytes: number, onConnection: ConnectionHandler, onTlsError: (err: Error) => void): Promise<BoundListener> {
  const server: HttpsServer = createHttpsServer({ ...secureContextOptions(material), requestCert: true, rejectUnauthorized: false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
  const sockets = new Set<Socket>();
  track(server, sockets, "secureConnection");
  server.on("tlsClientError", (err) => onTlsError(err));
  server.on("request", (_req, res) => {
    res.writeHead(426, { "content-type": "text/plain", upgrade: "websocket" }).end("MQTT over WebSockets only\n");
  });
  const wss = new WebSocketServer({
    server,
    // Room for the MQTT fixed header and topic on top of the payload limit.
    maxPayload: maxPayloadBytes + 65_536,
    handleProtocols: (protocols) => (protocols.has("mqtt") ? "mqtt" : false),
  });
  wss.on("connection", (ws, req) => {
    const stream = createWebSocketStream(ws);
    stream.on("error", () => stream.destroy());
    onConnection(stream, "wss", req.socket as TLSSocket, req);
  });
  const bound = await listen(server, port, host, "MQTT over secure WebSockets", "broker.mqttWssPort");
  return {
    name: "wss",
    port: bound,
    host,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await closeServer(server, sockets);
    },
    setSecureContext: (m) => server.setSecureContext(secureContextOptions(m)),
  };
}

/** Plaintext MQTT, bound to 127.0.0.1 whatever the configured host: for local tools only. */
export async function listenPlainLoopback(port: number, onConnection: ConnectionHandler): Promise<BoundListener> {
  const host = "127.0.0.1";
  const server = createNetServer((socket) => onConnection(socket, "plain", null));
  const sockets = new Set<Socket>();
  track(server, sockets, "connection");
  const bound = await listen(server, port, host, "plaintext MQTT", "broker.mqttPlainPort");
  return { name: "plain", port: bound, host, close: () => closeServer(server, sockets) };
}
