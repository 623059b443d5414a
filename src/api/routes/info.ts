import type { FastifyInstance, FastifyRequest } from "fastify";
import { VERSION } from "../../lib/version.js";

/** Where the API learns what to advertise: set by `moat serve` once the listeners are bound. */
export interface PublicEndpoints {
  /** `api.publicUrl`, when configured. */
  readonly apiUrl: string | null;
  /** `broker.publicUrl`, when configured. */
  readonly mqttUrl: string | null;
  /** The bound MQTT-over-TLS port, null when this server runs no broker. */
  mqttPort(): number | null;
  /** `broker.audience`: what device JWTs must name as `aud`. */
  readonly jwtAudience: string;
}

const INFO_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["estUrl", "mqttUrl", "trustDomain", "version", "jwtAudience"],
  properties: {
    estUrl: { type: "string", maxLength: 2048 },
    mqttUrl: { type: ["string", "null"], maxLength: 2048 },
    trustDomain: { type: "string", maxLength: 253 },
    version: { type: "string", maxLength: 64 },
    jwtAudience: { type: "string", maxLength: 256 },
  },
} as const;

/** The host (and port) the device reached this server by, as the Host header names it; IPv6 in brackets. */
function requestHost(request: FastifyRequest): { hostWithPort: string; hostname: string } {
  const hostWithPort = request.host;
  const hostname = hostWithPort.startsWith("[") ? hostWithPort.slice(0, hostWithPort.indexOf("]") + 1) : hostWithPort.replace(/:\d+$/, "");
  return { hostWithPort, hostname };
}

/**
 * `GET /v1/info`: the public endpoints a device needs to start (the device SDK and `moat sim` read it).
 * No secrets: the same facts a port scan and the TLS certificate give away. Without configured public
 * URLs, the answer uses the host the request named, so a device is sent back to the name it already reached.
 */
export async function infoRoutes(api: FastifyInstance, { trustDomain, endpoints }: { trustDomain: string; endpoints: PublicEndpoints }): Promise<void> {
  api.get(
    "/v1/info",
    { config: { public: true }, schema: { tags: ["health"], summary: "Public endpoints for devices: EST and MQTT URLs, trust domain, version, JWT audience", security: [], response: { 200: INFO_SCHEMA } } },
    async (request) => {
      const { hostWithPort, hostname } = requestHost(request);
      const apiUrl = (endpoints.apiUrl ?? `https://${hostWithPort}`).replace(/\/+$/, "");
      const port = endpoints.mqttPort();
      const mqttUrl = endpoints.mqttUrl ?? (port === null ? null : `mqtts://${hostname}:${port}`);
      return { estUrl: `${apiUrl}/.well-known/est`, mqttUrl, trustDomain, version: VERSION, jwtAudience: endpoints.jwtAudience };
    },
  );
}
