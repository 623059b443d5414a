import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { open } from "node:fs/promises";

/** An image to check: a file path or a stream of chunks (e.g. straight from the download). */
export type ImageSource = string | AsyncIterable<Uint8Array>;

export interface ImageDigest {
  /** Bytes read; at most `limit + 1`, so an oversized image is detected without reading all of it. */
  size: number;
  sha256: Buffer;
  hmacSha256?: Buffer;
}

/** Read buffer for files: one buffer reused for the whole image, so memory stays constant. */
const CHUNK = 1 << 20;

/**
 * Hashes an image in one streaming pass with constant memory. With `limit`, reading stops one byte
 * past it: enough to prove the image is too long without hashing an attacker's endless stream.
 */
export async function digestImage(source: ImageSource, options: { limit?: number; hmacKey?: Uint8Array } = {}): Promise<ImageDigest> {
  const hash = createHash("sha256");
  const mac = options.hmacKey ? createHmac("sha256", options.hmacKey) : undefined;
  const stopAt = options.limit === undefined ? Number.POSITIVE_INFINITY : options.limit + 1;
  const size = typeof source === "string" ? await digestFile(source, stopAt, hash, mac) : await digestStream(source, stopAt, hash, mac);
  return { size, sha256: hash.digest(), ...(mac ? { hmacSha256: mac.digest() } : {}) };
}

async function digestFile(path: string, stopAt: number, hash: Hash, mac: Hmac | undefined): Promise<number> {
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.allocUnsafe(CHUNK);
    let size = 0;
    while (size < stopAt) {
      const want = Math.min(CHUNK, stopAt - size);
      const { bytesRead } = await handle.read(buffer, 0, want, null);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      hash.update(chunk);
      mac?.update(chunk);
      size += bytesRead;
    }
    return size;
  } finally {
    await handle.close();
  }
}

async function digestStream(source: AsyncIterable<Uint8Array>, stopAt: number, hash: Hash, mac: Hmac | undefined): Promise<number> {
  let size = 0;
  for await (const piece of source) {
    const chunk = piece.length > stopAt - size ? piece.subarray(0, stopAt - size) : piece;
    hash.update(chunk);
    mac?.update(chunk);
    size += chunk.length;
    if (size >= stopAt) break;
  }
  return size;
}
