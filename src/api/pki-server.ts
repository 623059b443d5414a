import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { listenFailed } from "../config/index.js";
import { isMoatError } from "../errors.js";
import { MAX_CSR_BYTES, type Pki, type CaRegistry } from "../pki/index.js";

/** What the PKI endpoints need from the application. */
export interface PkiEndpointServices {
  readonly pki: Pki;
  readonly ca: CaRegistry;
}

export interface PkiServerOptions {
  host: string;
  port: number;
  /** Operator log for unexpected failures (never request bodies). */
  onError?: (error: unknown) => void;
}

/** RFC 6960 requests are small; anything near this is not an OCSP request. */
const MAX_OCSP_REQUEST = MAX_CSR_BYTES;
const CA_PATH = /^\/ca\/(root|[0-9a-f]{2,40})\.cer$/;
const CRL_PATH = /^\/crl(?:\/(root|[0-9a-f]{2,40}))?$/;

/**
 * The plain-HTTP PKI endpoints (RFC 5280 §4.2.1.13 CRLs and §4.2.2.1 caIssuers over HTTP; RFC 6960
 * Appendix A OCSP over HTTP). Plain HTTP is deliberate: the objects are signed, and clients
 * checking revocation of a TLS certificate cannot depend on that TLS connection.
 */
export class PkiHttpServer {
  private server: Server | null = null;

  constructor(
    private readonly services: PkiEndpointServices,
    private readonly options: PkiServerOptions,
  ) {}

  async listen(): Promise<AddressInfo> {
    const server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        this.options.onError?.(error);
        if (!response.headersSent) send(response, 500, "text/plain", Buffer.from("internal error\n"));
        else response.destroy();
      });
    });
    // Slow or stuck clients must not pin sockets (RFC 6960 responders are public).
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    server.keepAliveTimeout = 5_000;
    server.maxHeadersCount = 50;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", (error) => reject(listenFailed(error, { host: this.options.host, port: this.options.port, service: "the PKI endpoints (CRL, OCSP)", setting: "pkiPort" })));
      server.listen(this.options.port, this.options.host, () => resolve());
    });
    return server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://pki.invalid");
    const path = url.pathname;
    if (path === "/ocsp" || path.startsWith("/ocsp/")) return this.ocsp(request, response, path);
    if (request.method !== "GET" && request.method !== "HEAD") return send(response, 405, "text/plain", Buffer.from("method not allowed\n"), { allow: "GET, HEAD" });
    const crl = CRL_PATH.exec(path);
    if (crl) {
      try {
        const state = await this.services.pki.crls.current(crl[1]);
        // RFC 5280 §4.2.1.13: DER CRL, media type application/pkix-crl (RFC 2585 §4.2).
        return send(response, 200, "application/pkix-crl", state.der, {
          "last-modified": new Date(state.thisUpdate).toUTCString(),
          expires: new Date(state.nextUpdate).toUTCString(),
          "cache-control": "public, no-transform, must-revalidate",
        });
      } catch (error) {
        if (isMoatError(error, "PKI_CA_NOT_FOUND")) return send(response, 404, "text/plain", Buffer.from("no such CA\n"));
        throw error;
      }
    }
    const ca = CA_PATH.exec(path);
    if (ca) {
      const records = await this.services.ca.list();
      const record = ca[1] === "root" ? records.find((r) => r.role === "root" && r.active) : records.find((r) => r.serialHex === ca[1] && r.role !== "server");
      if (!record) return send(response, 404, "text/plain", Buffer.from("no such CA\n"));
      const der = Buffer.from(record.certificatePem.replace(/-----[^-]+-----|\s/g, ""), "base64");
      // RFC 5280 §4.2.2.1: a single DER certificate as application/pkix-cert.
      return send(response, 200, "application/pkix-cert", der, { "cache-control": "public, max-age=86400" });
    }
    return send(response, 404, "text/plain", Buffer.from("not found\n"));
  }

  /** RFC 6960 Appendix A.1: POST with the DER body, or GET with the base64 request URL-encoded in the path. */
  private async ocsp(request: IncomingMessage, response: ServerResponse, path: string): Promise<void> {
    let der: Buffer | null;
    if (request.method === "POST" && path === "/ocsp") {
      der = await readBody(request, MAX_OCSP_REQUEST);
      if (der === null) return send(response, 413, "text/plain", Buffer.from("request too large\n"));
    } else if (request.method === "GET" && path.startsWith("/ocsp/")) {
      let encoded: string;
      try {
        encoded = decodeURIComponent(path.slice("/ocsp/".length));
      } catch {
        encoded = "";
      }
      der = /^[A-Za-z0-9+/]+={0,2}$/.test(encoded) && encoded.length <= (MAX_OCSP_REQUEST * 4) / 3 ? Buffer.from(encoded, "base64") : Buffer.alloc(0);
    } else {
      return send(response, 405, "text/plain", Buffer.from("use POST /ocsp or GET /ocsp/<base64>\n"), { allow: "GET, POST" });
    }
    const answer = await this.services.pki.ocsp.respond(der);
    // Malformed requests still get HTTP 200 with an OCSPResponse whose status says so (RFC 6960 §2.3).
    return send(response, 200, "application/ocsp-response", answer, { "cache-control": "no-cache" });
  }
}

function send(response: ServerResponse, status: number, type: string, body: Buffer, headers: Record<string, string> = {}): void {
  response.writeHead(status, { "content-type": type, "content-length": String(body.length), "x-content-type-options": "nosniff", ...headers });
  response.end(response.req.method === "HEAD" ? undefined : body);
}

/** Reads a request body up to `limit` bytes; null when it is larger (the rest is not read). */
function readBody(request: IncomingMessage, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const declared = Number(request.headers["content-length"] ?? "0");
    if (declared > limit) {
      request.resume();
      resolve(null);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        request.removeAllListeners("data");
        request.resume();
        resolve(null);
        return;
      }
      chunks.push(chunk);
    });
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}
