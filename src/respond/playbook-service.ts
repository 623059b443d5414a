/** Playbooks in the store: apply (create or replace), list, show, delete; each change is audited and on the change feed. */
import { MoatError } from "../errors.js";
import { parsePlaybook, PLAYBOOK_NAME } from "./playbook.js";
import type { RespondStore, StoredPlaybook } from "./ports.js";

export class PlaybookService {
  constructor(private readonly store: RespondStore) {}

  /** Validates the YAML and stores it (replacing a playbook of the same name). */
  async apply(source: string, actor: string): Promise<{ playbook: StoredPlaybook; created: boolean }> {
    const definition = parsePlaybook(source);
    const playbook: StoredPlaybook = { name: definition.name, definition, source, updatedAt: new Date().toISOString(), updatedBy: actor };
    const created = await this.store.transact(async (uow) => {
      const existing = await uow.playbooks.get(definition.name);
      await uow.playbooks.upsert(playbook);
      // Turning on containment is a change to what Moat may do to devices by itself: it stands out.
      const contains = definition.mode === "enforce" && definition.actions.some((a) => a === "quarantine" || a === "revoke");
      await uow.events.append({
        type: "playbook.applied",
        severity: contains ? "high" : "medium",
        actor,
        subject: definition.name,
        data: { rule: definition.rule, mode: definition.mode, actions: definition.actions, rateLimit: definition.rateLimit, created: existing === null },
      });
      await uow.changes.append({ kind: "playbook.changed", subject: definition.name, data: { op: "applied" } });
      return existing === null;
    });
    return { playbook, created };
  }

  async list(): Promise<StoredPlaybook[]> {
    return this.store.playbooks.list();
  }

  async get(name: string): Promise<StoredPlaybook> {
    if (typeof name !== "string" || !PLAYBOOK_NAME.test(name)) throw new MoatError("PLAYBOOK_NOT_FOUND", `${JSON.stringify(String(name).slice(0, 64))} is not a playbook name`);
    const playbook = await this.store.playbooks.get(name);
    if (!playbook) throw new MoatError("PLAYBOOK_NOT_FOUND", `no playbook ${name}`);
    return playbook;
  }

  async delete(name: string, actor: string): Promise<void> {
    await this.get(name);
    await this.store.transact(async (uow) => {
      if (!(await uow.playbooks.delete(name))) throw new MoatError("PLAYBOOK_NOT_FOUND", `no playbook ${name}`);
      await uow.events.append({ type: "playbook.deleted", severity: "medium", actor, subject: name, data: {} });
      await uow.changes.append({ kind: "playbook.changed", subject: name, data: { op: "deleted" } });
    });
  }
}
