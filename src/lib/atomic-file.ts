// Replacing a file so that a crash or a concurrent reader never sees half of it: the bytes go to a
// temporary sibling that is fsynced, renamed over the target, and the folder is fsynced so the
// rename itself survives a power cut. Every file Moat rewrites in place goes through here.
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, linkSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { copyFile, link, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export interface AtomicWriteOptions {
  /** Permission bits of the new file (default 0600: most of what Moat writes is private). */
  readonly mode?: number;
  /**
   * When false, an existing file is never replaced: the call fails with EEXIST and leaves it as it
   * was (the new file appears by a hard link, which is as atomic as the rename). Default true.
   */
  readonly replace?: boolean;
}

const DEFAULT_MODE = 0o600;

/** A sibling of `path` no other writer picks (random, so two processes never share one). */
function temporarySibling(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
}

/** Writes `data` to `path` atomically: temp file, fsync, rename, fsync the folder. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const temp = temporarySibling(path);
  const handle = await open(temp, "wx", options.mode ?? DEFAULT_MODE);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  await commit(temp, path, options);
}

/** Copies the file at `source` to `path` atomically (same steps as {@link writeFileAtomic}); for large files. */
export async function copyFileAtomic(source: string, path: string, options: AtomicWriteOptions = {}): Promise<void> {
  const temp = temporarySibling(path);
  const mode = options.mode ?? DEFAULT_MODE;
  try {
    // Create the temporary file first so the copy cannot follow a planted link.
    await (await open(temp, "wx", mode)).close();
    await copyFile(source, temp);
    const handle = await open(temp, "r+");
    try {
      await handle.chmod(mode); // the copy takes the source's permission bits
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await commit(temp, path, options);
}

/** The synchronous form of {@link writeFileAtomic}, for callers that cannot await (CLI start-up, key files). */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): void {
  const temp = temporarySibling(path);
  const fd = openSync(temp, "wx", options.mode ?? DEFAULT_MODE);
  try {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  try {
    if (options.replace === false) linkSync(temp, path);
    else renameSync(temp, path);
  } finally {
    rmSync(temp, { force: true });
  }
  const dir = openSync(dirname(path), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

async function commit(temp: string, path: string, options: AtomicWriteOptions): Promise<void> {
  try {
    if (options.replace === false) await link(temp, path);
    else await rename(temp, path);
  } finally {
    await rm(temp, { force: true });
  }
  const dir = await open(dirname(path), "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
