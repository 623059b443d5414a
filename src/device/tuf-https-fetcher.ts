import { request as httpsRequest } from "node:https";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { Readable } from "node:stream";
import { BaseFetcher } from "tuf-js";
// tuf-js stops probing for newer roots only on its own DownloadHTTPError (404/403), which its door does not re-export.
import { DownloadHTTPError } from "tuf-js/dist/error.js";

export interface TufFetcherOptions {
  /** CA certificate(s) that sign the repository's HTTPS certificate (Moat's own CA). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate and key for mTLS, when the server asks for them. */
  cert?: string | Buffer;
  key?: string | Buffer;
  timeoutMs?: number;
}

/**
 * A tuf-js fetcher over node:https that trusts the given CA: the global fetch cannot take a
 * per-request CA without extra packages. Plain http:// is accepted only for loopback addresses.
 */
export class TufHttpsFetcher extends BaseFetcher {
  constructor(private readonly options: TufFetcherOptions = {}) {
    super();
  }

  override async fetch(url: string): Promise<ReadableStream<Uint8Array<ArrayBuffer>>> {
    const target = new URL(url);
    if (target.protocol !== "https:" && !(target.protocol === "http:" && isLoopback(target.hostname)))
      throw new DownloadHTTPError(`refusing to fetch TUF data over ${target.protocol} from a non-loopback host`, 400);
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const send = target.protocol === "https:" ? httpsRequest : httpRequest;
      const req = send(target, { method: "GET", ca: this.options.ca, cert: this.options.cert, key: this.options.key, timeout: this.options.timeoutMs ?? 30_000 }, resolve);
      req.on("timeout", () => req.destroy(new Error(`timeout fetching ${url}`)));
      req.on("error", reject);
      req.end();
    });
    if (response.statusCode !== 200) {
      response.resume();
      throw new DownloadHTTPError(`GET ${target.pathname} answered ${response.statusCode}`, response.statusCode ?? 0);
    }
    // The DOM and node:stream/web ReadableStream types differ only in typing, not at run time.
    return Readable.toWeb(response) as unknown as ReadableStream<Uint8Array<ArrayBuffer>>;
  }
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "[::1]" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
