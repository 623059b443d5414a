import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { MoatError } from "../errors.js";
import { writeFileAtomic } from "../lib/atomic-file.js";

export type SlotName = "a" | "b";

/** The A/B state a bootloader would keep: which slot runs, and which one waits for its first boot. */
export interface SlotState {
  active: SlotName;
  /** A slot holding a freshly installed image that has not booted successfully yet. */
  pending?: SlotName;
  /** What each slot holds (from its verified manifest). */
  slots: Partial<Record<SlotName, { version: string; securityVersion: number }>>;
}

/** A/B slots as two folders plus a state file, replaced atomically on every change. */
export class AbSlots {
  constructor(readonly dir: string) {}

  slotDir(slot: SlotName): string {
    return join(this.dir, slot);
  }

  async read(): Promise<SlotState> {
    let text: string;
    try {
      text = await readFile(join(this.dir, "state.json"), "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return { active: "a", slots: {} };
      throw new MoatError("OTA_SLOT_STATE_INVALID", `cannot read ${join(this.dir, "state.json")}`, { cause: error });
    }
    try {
      const state = JSON.parse(text) as SlotState;
      if ((state.active !== "a" && state.active !== "b") || (state.pending !== undefined && state.pending !== "a" && state.pending !== "b"))
        throw new Error("bad slot names");
      return state;
    } catch (cause) {
      throw new MoatError("OTA_SLOT_STATE_INVALID", `${join(this.dir, "state.json")} is not a valid slot state`, { cause });
    }
  }

  async write(state: SlotState): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFileAtomic(join(this.dir, "state.json"), `${JSON.stringify(state, null, 2)}\n`);
  }

  /** The slot an update may be written to: never the active one. */
  static inactive(state: SlotState): SlotName {
    return state.active === "a" ? "b" : "a";
  }
}
