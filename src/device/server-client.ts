// The device's HTTPS conversations with its Moat server: the public endpoint list (GET /v1/info), EST
// enrollment and re-enrollment (RFC 7030) and the device's own status. The server certificate is
// checked against the device's trust anchor and its name against the URL, always.
import { request } from "node:https";
import { ERROR_CODES, MoatError, type ErrorCode } from "../errors.js";
import { certificatesOfEstBody } from "./pkcs7.js";

/** What `GET /v1/info` advertises (no secrets). */
export interface ServerInfo {
  /** EST base URL, e.g. https://host:8443/.well-known/est */
  estUrl: string;
  /** MQTT over TLS, e.g. mqtts://host:8883; null when the server runs no broker. */
  mqttUrl: string | null;
  trustDomain: string;
  version: string;
  /** The audience the broker expects in device JWTs (absent from servers older than the SDK). */
  jwtAudience?: string;
}

/** A TLS client identity for a request (EST re-enrollment, status, zero-touch enrollment). */
export interface ClientIdentity {
  keyPem: string;
  certPem: string;
}

interface Answer {
  status: number;
  contentType: string;
  body: string;
}

/** Larger answers than this are not something a Moat server sends to a device. */
const MAX_ANSWER_BYTES = 1024 * 1024;
const TIMEOUT_MS = 30_000;

/** A refusal from the server: its problem+json code (when it sent one) and detail. */
export class ServerRefusal {
  constructor(
    readonly status: number,
    readonly code: string | null,
    readonly detail: string,
  ) {}

  /** The server's code when it is one of Moat's, else `fallback`. */
  knownCode(fallback: ErrorCode): ErrorCode {
    return this.code !== null && this.code in ERROR_CODES ? (this.code as ErrorCode) : fallback;
  }
}

function send(url: URL, ca: string, options: { method: "GET" | "POST"; body?: Buffer; headers?: Record<string, string>; client?: ClientIdentity }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method,
        ca,
        ...(options.client ? { key: options.client.keyPem, cert: options.client.certPem } : {}),
        headers: { ...options.headers, ...(options.body ? { "content-length": String(options.body.length) } : {}) },
        timeout: TIMEOUT_MS,
        // A device talks to one server: no pooled sockets that would keep its process alive.
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) {
            req.destroy(new MoatError("DEVICE_SERVER_ANSWER_INVALID", `the answer from ${url.origin} is larger than ${MAX_ANSWER_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers["content-type"] ?? ""), body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(Object.assign(new Error(`no answer within ${TIMEOUT_MS} ms`), { code: "ETIMEDOUT" })));
    req.on("error", (error) => reject(networkError(url, error)));
    req.end(options.body);
  });
}

/** TLS verification failures (wrong trust anchor, wrong name) are not outages: say which it is. */
const UNTRUSTED = new Set(["ERR_TLS_CERT_ALTNAME_INVALID", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "CERT_SIGNATURE_FAILURE", "CERT_UNTRUSTED"]);

export function networkError(url: URL, error: unknown): MoatError {
  if (error instanceof MoatError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? "";
  if (UNTRUSTED.has(code))
    return new MoatError("DEVICE_SERVER_UNTRUSTED", `the server at ${url.origin} is not the one the trust anchor names (${code}): check the CA bundle and the host name`, { cause: error, detail: { url: url.origin, reason: code } });
  return new MoatError("DEVICE_SERVER_UNREACHABLE", `the server at ${url.origin} cannot be reached: ${(error as Error).message}`, { cause: error, detail: { url: url.origin, reason: code } });
}

function refusalOf(answer: Answer): ServerRefusal {
  if (answer.contentType.includes("json")) {
    try {
      const problem = JSON.parse(answer.body) as { code?: unknown; detail?: unknown };
      return new ServerRefusal(answer.status, typeof problem.code === "string" ? problem.code : null, typeof problem.detail === "string" ? problem.detail : answer.body.slice(0, 200));
    } catch {
      // Not JSON after all: fall through.
    }
  }
  return new ServerRefusal(answer.status, null, answer.body.slice(0, 200));
}

/** Joins a base URL and a path, keeping the base's own path (a server behind a prefix). */
export function endpoint(base: string, path: string): URL {
  const url = new URL(base);
  url.pathname = url.pathname.replace(/\/+$/, "") + path;
  return url;
}

/** `GET /v1/info`. */
export async function fetchServerInfo(server: string, ca: string): Promise<ServerInfo> {
  const url = endpoint(server, "/v1/info");
  const answer = await send(url, ca, { method: "GET", headers: { accept: "application/json" } });
  if (answer.status !== 200) {
    const refusal = refusalOf(answer);
    throw new MoatError("DEVICE_SERVER_ANSWER_INVALID", `${url.href} answered ${answer.status}: ${refusal.detail}`, { detail: { status: answer.status } });
  }
  let info: Partial<ServerInfo>;
  try {
    info = JSON.parse(answer.body) as Partial<ServerInfo>;
  } catch (error) {
    throw new MoatError("DEVICE_SERVER_ANSWER_INVALID", `${url.href} did not answer JSON`, { cause: error });
  }
  if (typeof info.estUrl !== "string" || (info.mqttUrl !== null && typeof info.mqttUrl !== "string") || typeof info.trustDomain !== "string" || typeof info.version !== "string")
    throw new MoatError("DEVICE_SERVER_ANSWER_INVALID", `${url.href} did not answer the endpoint list (estUrl, mqttUrl, trustDomain, version)`);
  return {
    estUrl: info.estUrl,
    mqttUrl: info.mqttUrl ?? null,
    trustDomain: info.trustDomain,
    version: info.version,
    ...(typeof info.jwtAudience === "string" ? { jwtAudience: info.jwtAudience } : {}),
  };
}

/**
 * One EST enrollment (`simpleenroll`, with a token or a factory certificate) or re-enrollment
 * (`simplereenroll`, with the current certificate). Returns the issued certificate (DER) or the
 * server's refusal.
 */
export async function estRequest(
  estUrl: string,
  ca: string,
  operation: "simpleenroll" | "simplereenroll",
  csrDer: Buffer,
  auth: { token: string } | { client: ClientIdentity },
): Promise<{ ok: true; certificateDer: Buffer } | { ok: false; refusal: ServerRefusal }> {
  const url = endpoint(estUrl, `/${operation}`);
  const body = Buffer.from(csrDer.toString("base64").replace(/(.{64})/g, "$1\n") + "\n");
  const answer = await send(url, ca, {
    method: "POST",
    body,
    headers: { "content-type": "application/pkcs10", ...("token" in auth ? { authorization: `Bearer ${auth.token}` } : {}) },
    ...("client" in auth ? { client: auth.client } : {}),
  });
  if (answer.status !== 200) return { ok: false, refusal: refusalOf(answer) };
  const certificates = certificatesOfEstBody(answer.body);
  if (certificates.length !== 1) throw new MoatError("DEVICE_SERVER_ANSWER_INVALID", `the EST answer holds ${certificates.length} certificates, expected the device's one`);
  return { ok: true, certificateDer: certificates[0]! };
}
