import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { MoatError } from "../errors.js";
import { writeFileAtomicSync } from "../lib/atomic-file.js";

/** Reads a UTF-8 text file of at most `maxBytes` (NETWORK_FILE_ACCESS otherwise). */
export function readTextFile(path: string, maxBytes: number, what: string): string {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (cause) {
    throw new MoatError("NETWORK_FILE_ACCESS", `cannot open ${what} ${path}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause });
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new MoatError("NETWORK_FILE_ACCESS", `${what} ${path} is not a regular file`);
    if (stat.size > maxBytes) throw new MoatError("NETWORK_FILE_ACCESS", `${what} ${path} is ${stat.size} bytes, over the ${maxBytes}-byte limit`);
    const buffer = Buffer.alloc(stat.size);
    let read = 0;
    while (read < stat.size) {
      const n = readSync(fd, buffer, read, stat.size - read, read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read).toString("utf8");
  } finally {
    closeSync(fd);
  }
}

/** Replaces `path` atomically (see lib/atomic-file.ts): a reader never sees half a file and a failure leaves the old one. */
export function writeFileAtomic(path: string, content: string, mode = 0o644): void {
  try {
    writeFileAtomicSync(path, content, { mode });
  } catch (cause) {
    throw new MoatError("NETWORK_FILE_ACCESS", `cannot write ${path}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`, { cause });
  }
}
