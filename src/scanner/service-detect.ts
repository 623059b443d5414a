/**
 * Service detection for one open TCP port: banner first (Telnet, SSH, FTP speak first), then, for
 * silent services, the probes most likely to fit the port number first: TLS handshake, HTTP HEAD,
 * MQTT CONNECT. Inside TLS the same HTTP/MQTT probes name the application protocol.
 */
import { readBanner } from "./banner-probe.js";
import { basicRealm, httpHead, isRevocationOnly } from "./http-probe.js";
import { mqttAnonymousAccess } from "./mqtt-probe.js";
import { permissiveTls, type Endpoint, type ProbeContext } from "./probe-context.js";
import { assessTls, detectTls } from "./tls-probe.js";
import type { ServiceInfo } from "./types.js";

const TLS_PORTS = new Set([443, 465, 636, 993, 995, 4433, 5061, 8443, 8883, 8884, 9443, 10443]);
const MQTT_PORTS = new Set([1883, 1884, 8883, 8884]);
const HTTP_PORTS = new Set([80, 81, 591, 5000, 7547, 8000, 8008, 8080, 8081, 8888, 9000]);

export interface DetectOptions {
  /** How long an anonymous MQTT subscriber listens for messages. */
  mqttListenMs: number;
}

type AppProbe = (endpoint: Endpoint) => Promise<ServiceInfo | null>;

export async function detectService(ctx: ProbeContext, target: { address: string; port: number; hostname?: string }, options: DetectOptions): Promise<ServiceInfo> {
  const plain: Endpoint = { ...target };
  const banner = await readBanner(ctx, plain);
  if (!banner) return { name: "unknown", overTls: false };
  if (banner.kind !== "silent") {
    const name = banner.kind === "text" ? "unknown" : banner.kind;
    return { name, overTls: false, ...(banner.banner ? { banner: banner.banner } : {}), ...(banner.telnetOptions ? { telnet: { options: banner.telnetOptions } } : {}) };
  }

  const http: AppProbe = async (endpoint) => {
    const head = await httpHead(ctx, endpoint);
    if (!head) return null;
    const realm = basicRealm(head);
    const server = head.headers.get("server");
    const revocationOnly = !endpoint.tls && realm === null && (await isRevocationOnly(ctx, endpoint, head));
    return { name: "http", overTls: Boolean(endpoint.tls), http: { status: head.status, ...(server ? { server } : {}), ...(realm !== null ? { basicRealm: realm } : {}), ...(revocationOnly ? { revocationOnly } : {}) } };
  };
  const mqtt: AppProbe = async (endpoint) => {
    const access = await mqttAnonymousAccess(ctx, endpoint, options.mqttListenMs);
    if (!access) return null;
    return {
      name: "mqtt",
      overTls: Boolean(endpoint.tls),
      mqtt: { anonymousReturnCode: access.returnCode, readAll: access.readAll, readSys: access.readSys, topicsSeen: access.topicsSeen },
    };
  };
  const tls: AppProbe = async (endpoint) => {
    const first = await detectTls(ctx, endpoint);
    if (!first) return null;
    const info = await assessTls(ctx, endpoint, first);
    const inner: Endpoint = { ...endpoint, tls: permissiveTls(endpoint) };
    const appProbes = MQTT_PORTS.has(endpoint.port) ? [mqtt, http] : [http, mqtt];
    if (!info.clientCertificateRequired) {
      for (const probe of appProbes) {
        const app = await probe(inner);
        if (app) return { ...app, overTls: true, tls: info };
      }
    }
    return { name: "tls", overTls: true, tls: info };
  };

  const order = MQTT_PORTS.has(target.port) && !TLS_PORTS.has(target.port) ? [mqtt, tls, http] : TLS_PORTS.has(target.port) ? [tls, http, mqtt] : HTTP_PORTS.has(target.port) ? [http, tls, mqtt] : [tls, http, mqtt];
  for (const probe of order) {
    if (ctx.signal.aborted) break;
    const found = await probe(plain);
    if (found) return found;
  }
  return { name: "unknown", overTls: false };
}
