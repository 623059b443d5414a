/**
 * Every socket the scanner opens is made through one `ScanTransport`, so tests can count them
 * (the scope guard must refuse before any exists) and the run can close them all on timeout.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect as netConnect, type NetConnectOpts, type Socket } from "node:net";
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { defaultConnector, type PortConnector } from "./tcp-connect-scan.js";

export interface ScanTransport {
  /** Port-state probes (the connect scan). */
  connector: PortConnector;
  connectTcp(options: NetConnectOpts): Socket;
  connectTls(options: ConnectionOptions): TLSSocket;
  createUdp(type: "udp4" | "udp6"): UdpSocket;
}

export function defaultTransport(): ScanTransport {
  return {
    connector: defaultConnector(),
    connectTcp: (options) => netConnect(options),
    connectTls: (options) => tlsConnect(options),
    createUdp: (type) => createSocket(type),
  };
}
