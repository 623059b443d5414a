import { execFile } from "node:child_process";

export interface Handshake {
  ok: boolean;
  /** The negotiated suite (OpenSSL name) when the handshake completed. */
  cipher?: string;
  protocol?: string;
}

/**
 * One TLS handshake with `openssl s_client` against 127.0.0.1:port, offering only what `args` allows
 * (`-tls1_2 -cipher X` or `-tls1_3 -ciphersuites Y`). Bounded by a timeout so a silent peer cannot hang a test.
 */
export function opensslHandshake(port: number, args: string[]): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      "openssl",
      ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", "localhost", "-brief", ...args],
      { timeout: 10_000 },
      (error, stdout, stderr) => {
        if (error && (error as { killed?: boolean }).killed) return reject(new Error(`openssl s_client timed out on port ${port}`));
        const text = `${stdout}\n${stderr}`;
        const cipher = /Ciphersuite: (\S+)/.exec(text)?.[1];
        const protocol = /Protocol version: (\S+)/.exec(text)?.[1];
        resolve({ ok: !error && cipher !== undefined, ...(cipher ? { cipher } : {}), ...(protocol ? { protocol } : {}) });
      },
    );
    child.stdin?.end();
  });
}
