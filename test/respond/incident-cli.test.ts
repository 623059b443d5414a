/**
 * Incidents over real audit rows, and the respond commands as a user runs them (the built CLI in its
 * own process on the same installation): playbook apply/list/undo, notify add/list, incident
 * open/show/close with JSON and Markdown reports, events tail.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { incidentMarkdown } from "../../src/respond/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";
import { runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";

let t: TestApp;
const dir = tempDir();

beforeAll(async () => {
  t = await createTestApp("sqlite");
});
afterAll(async () => {
  await t.cleanup();
  dir.cleanup();
});

const moat = (...args: string[]) => runCli([...args, ...t.cliArgs]);

async function raise(alertId: string, deviceId: string, count = 1) {
  await t.app.audit.emit({
    type: "alert.raised",
    severity: "high",
    actor: "detect",
    subject: deviceId,
    data: { alertId, rule: "topic-probing", subject: { kind: "device", id: deviceId }, severity: "high", count },
  });
  return t.app.respond.executor.handle({ alertId, rule: "topic-probing", subject: { kind: "device", id: deviceId }, severity: "high", count });
}

describe("incidents", () => {
  it("assemble a timeline from the audit log: the alert, the playbook's action, the device's status change, the close", async () => {
    await t.app.devices.create({ id: "cam-7", status: "active" }, "test");
    await t.app.devices.create({ id: "cam-8", status: "active" }, "test");
    await t.app.respond.playbooks.apply("name: contain\nrule: topic-probing\nactions: [quarantine]\n", "test");
    // The evidence: denials before the alert (the other device's are not this incident's).
    for (const [device, topic] of [["cam-7", "devices/x/commands/#"], ["cam-8", "devices/y/#"], ["cam-7", "devices/z/commands/#"]])
      await t.app.audit.emit({ type: "acl.denied", severity: "medium", actor: `device:${device}`, subject: device!, data: { action: "subscribe", topic, reason: "policy" } });
    const [action] = await raise("al-inc-1", "cam-7");
    await raise("al-other", "cam-8");
    await raise("al-inc-1", "cam-7", 2);
    const incident = await t.app.respond.incidents.open({ title: "topic scan from cam-7", alertIds: ["al-inc-1"] }, "operator:alice");
    expect(incident).toMatchObject({ status: "open", severity: "high", alertIds: ["al-inc-1"] });
    await t.app.respond.executor.undo(action!.id, "operator:alice");
    await t.app.respond.incidents.close(incident.id, "false positive: firmware probes its own topics", "operator:alice");

    const report = await t.app.respond.incidents.report(incident.id);
    const types = report.timeline.map((e) => e.type);
    expect(types).toEqual(["acl.denied", "acl.denied", "alert.raised", "device.status_changed", "respond.action", "alert.raised", "incident.opened", "device.status_changed", "respond.undone", "incident.closed"]);
    expect(report.timeline[0]).toMatchObject({ subject: "cam-7", summary: "denied subscribe devices/x/commands/#" });
    // Every entry is a real audit row: its seq finds it in the log with the same type.
    for (const entry of report.timeline) expect((await t.app.audit.entriesAfter(entry.seq - 1, 1))[0]).toMatchObject({ seq: entry.seq, type: entry.type });
    // Nothing about the other alert or device.
    expect(report.timeline.some((e) => e.subject === "cam-8" || e.summary.includes("al-other"))).toBe(false);
    expect(report.alerts).toMatchObject([{ alertId: "al-inc-1", rule: "topic-probing", count: 2, subject: { kind: "device", id: "cam-7" } }]);
    expect(report.actions).toMatchObject([{ id: action!.id, status: "undone" }]);
    expect(report.timeline[4]).toMatchObject({ actor: "playbook:contain", summary: expect.stringContaining("quarantine done by playbook contain") });
    expect(report.timeline[3]).toMatchObject({ summary: "device cam-7: active → quarantined (alert al-inc-1 (topic-probing))" });

    const md = incidentMarkdown(report);
    expect(md).toContain(`# Incident ${incident.id}: topic scan from cam-7`);
    expect(md).toContain("| Seq | Time | Actor | Event | What happened |");
    expect(md).toContain(`| ${report.timeline[0]!.seq} |`);
    expect(md).toContain("- Resolution: false positive: firmware probes its own topics");
  });

  it("refuses a closed incident's second close and an unknown id", async () => {
    const incident = await t.app.respond.incidents.open({ title: "empty", alertIds: [] }, "test");
    await t.app.respond.incidents.close(incident.id, undefined, "test");
    await expect(t.app.respond.incidents.close(incident.id, undefined, "test")).rejects.toMatchObject({ code: "INCIDENT_CLOSED" });
    await expect(t.app.respond.incidents.report("inc_0000000000000000")).rejects.toMatchObject({ code: "INCIDENT_NOT_FOUND" });
    await expect(t.app.respond.incidents.open({ title: "", alertIds: [] }, "test")).rejects.toMatchObject({ code: "INCIDENT_INVALID" });
  });
});

describe("the respond commands", () => {
  it("apply, list and show a playbook; a bad one exits 1 with its code and changes nothing", async () => {
    const file = join(dir.path, "dry.yaml");
    writeFileSync(file, "name: rehearse\nrule: flapping\nmode: dry-run\nactions: [quarantine]\nrateLimit: { max: 3, window: 1h }\n");
    const applied = await moat("playbook", "apply", file);
    expect(applied.stderr).toBe("");
    expect(applied.stdout).toBe("created playbook rehearse: rule flapping, dry-run, actions quarantine\n");
    const listed = await moat("playbook", "list", "--json");
    expect(JSON.parse(listed.stdout)).toContainEqual(expect.objectContaining({ name: "rehearse", mode: "dry-run", rateLimit: { max: 3, windowMs: 3_600_000 } }));
    writeFileSync(file, "name: broken\nrule: flapping\nactions: [nuke]\n");
    const refused = await moat("playbook", "apply", file);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/PLAYBOOK_INVALID/);
    expect((await t.app.respond.playbooks.list()).some((p) => p.name === "broken")).toBe(false);
  });

  it("undo from the command line reactivates the quarantined device", async () => {
    await t.app.devices.create({ id: "cam-9", status: "active" }, "test");
    const [action] = await raise("al-cli-1", "cam-9");
    const listed = JSON.parse((await moat("playbook", "actions", "--alert", "al-cli-1", "--json")).stdout) as { id: string; status: string }[];
    expect(listed).toMatchObject([{ id: action!.id, status: "done" }]);
    const undone = await moat("playbook", "undo", action!.id, "--json");
    expect(undone.code).toBe(0);
    expect(JSON.parse(undone.stdout)).toMatchObject({ status: "undone", undoneBy: expect.stringMatching(/^cli/) });
    expect((await t.app.devices.get("cam-9")).status).toBe("active");
  });

  it("adds a webhook with a generated secret shown once, lists it without the secret, and reads a secret only from a private file", async () => {
    const added = await moat("notify", "add", "webhook", "soc", "https://127.0.0.1:9/hook", "--json");
    expect(added.code).toBe(0);
    const { secret } = JSON.parse(added.stdout) as { secret: string };
    expect(secret).toMatch(/^whsec_/);
    const listed = await moat("notify", "list", "--json");
    expect(JSON.parse(listed.stdout)).toMatchObject([{ name: "soc", kind: "webhook", config: { url: "https://127.0.0.1:9/hook" } }]);
    expect(listed.stdout).not.toContain(secret.slice(6));
    const secretFile = join(dir.path, "secret");
    writeFileSync(secretFile, secret, { mode: 0o644 });
    const open = await moat("notify", "add", "webhook", "soc2", "https://127.0.0.1:9/hook", "--secret-file", secretFile);
    expect(open.code).toBe(1);
    expect(open.stderr).toMatch(/NOTIFY_SECRET_INVALID.*chmod 600/);
    const dead = await moat("notify", "dead-letters", "--json");
    expect(JSON.parse(dead.stdout)).toEqual([]);
  });

  it("opens, shows (JSON and Markdown) and closes an incident; events tail prints the latest matching events", async () => {
    await t.app.devices.create({ id: "cam-10", status: "active" }, "test");
    await raise("al-cli-2", "cam-10");
    const opened = await moat("incident", "open", "probe on cam-10", "--alert", "al-cli-2", "--json");
    expect(opened.code).toBe(0);
    const { id } = JSON.parse(opened.stdout) as { id: string };
    const md = await moat("incident", "show", id, "--format", "md");
    expect(md.stdout).toContain(`# Incident ${id}: probe on cam-10`);
    expect(md.stdout).toMatch(/\| \d+ \| .* \| detect \| alert\.raised \| alert al-cli-2 raised by rule topic-probing/);
    const json = JSON.parse((await moat("incident", "show", id, "--json")).stdout) as { timeline: { type: string }[] };
    expect(json.timeline.map((e) => e.type)).toEqual(["alert.raised", "device.status_changed", "respond.action", "incident.opened"]);
    const closed = await moat("incident", "close", id, "--resolution", "contained", "--json");
    expect(JSON.parse(closed.stdout)).toMatchObject({ status: "closed", resolution: "contained" });
    const listed = JSON.parse((await moat("incident", "list", "--status", "closed", "--json")).stdout) as { id: string }[];
    expect(listed.map((i) => i.id)).toContain(id);

    const tail = await moat("events", "tail", "--type", "respond.*,alert.raised", "--device", "cam-10", "--json");
    expect(tail.code).toBe(0);
    const lines = tail.stdout.trim().split("\n").map((l) => JSON.parse(l) as { type: string; subject: string });
    expect(lines.map((l) => l.type)).toEqual(["alert.raised", "respond.action"]);
    expect(lines.every((l) => l.subject === "cam-10")).toBe(true);
    const usage = await moat("events", "tail", "-f");
    expect(usage.code).toBe(1);
    expect(usage.stderr).toMatch(/--token-file/);
  });
});
