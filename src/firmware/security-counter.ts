import { readFile } from "node:fs/promises";
import { MoatError } from "../errors.js";
import { writeFileAtomic } from "../lib/atomic-file.js";

/**
 * The device's anti-rollback counter (the software stand-in for a one-time-programmable fuse).
 * It only moves up, and only after a successful boot of an image with a higher security version.
 */
export interface SecurityCounter {
  read(): Promise<number>;
  /** Raises the counter to `value`; lowering it is refused with `FIRMWARE_COUNTER_INVALID`. */
  advance(value: number): Promise<void>;
}

/** A counter persisted in a small file, replaced atomically. */
export class FileSecurityCounter implements SecurityCounter {
  constructor(private readonly path: string) {}

  async read(): Promise<number> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (error) {
      // A device fresh from the factory has no counter yet: it accepts any security version.
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
      throw new MoatError("FIRMWARE_COUNTER_INVALID", `cannot read the security counter at ${this.path}`, { cause: error });
    }
    const value = Number(text.trim());
    if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value))
      throw new MoatError("FIRMWARE_COUNTER_INVALID", `the security counter at ${this.path} is not a non-negative integer`);
    return value;
  }

  async advance(value: number): Promise<void> {
    if (!Number.isSafeInteger(value) || value < 0) throw new MoatError("FIRMWARE_COUNTER_INVALID", `security counter value ${value} is not a non-negative integer`);
    const current = await this.read();
    if (value < current) throw new MoatError("FIRMWARE_COUNTER_INVALID", `the security counter only moves up (${current} → ${value} refused)`);
    if (value === current) return;
    await writeFileAtomic(this.path, `${value}\n`);
  }
}
