/**
 * The response executor over a real installation (SQLite): playbooks turn alerts into audited
 * actions, dry-run only records, the rate cap stops a runaway rule, and undo reverses what it can.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RangeBans } from "../../src/broker/range-bans.js";
import { isMoatError } from "../../src/errors.js";
import type { RaisedAlert } from "../../src/respond/index.js";
import { respondStore } from "../../src/store/index.js";
import { createTestApp, type TestApp } from "../helpers/app.js";

let t: TestApp;

beforeEach(async () => {
  t = await createTestApp("sqlite");
});
afterEach(async () => {
  await t.cleanup();
});

const probing = (alertId: string, deviceId: string): RaisedAlert => ({ alertId, rule: "topic-probing", subject: { kind: "device", id: deviceId }, severity: "high", count: 1 });

async function actionEvents() {
  return (await t.app.audit.list({ type: "respond.action", limit: 1000 })).reverse();
}

describe("playbooks answer alerts", () => {
  it("quarantines the device named by the alert, audited with the alert id, and undo restores it", async () => {
    await t.app.devices.create({ id: "probe-1", status: "active" }, "test");
    await t.app.respond.playbooks.apply("name: contain-probers\nrule: topic-probing\nactions: [quarantine]\n", "test");
    const [action] = await t.app.respond.executor.handle(probing("al-1", "probe-1"));
    expect(action).toMatchObject({ action: "quarantine", status: "done", alertId: "al-1", playbook: "contain-probers", detail: { from: "active" } });
    expect((await t.app.devices.get("probe-1")).status).toBe("quarantined");
    // Identity records the status change with the playbook as actor and the alert as reason.
    const [changed] = await t.app.audit.list({ type: "device.status_changed", subject: "probe-1" });
    expect(changed).toMatchObject({ actor: "playbook:contain-probers", data: { from: "active", to: "quarantined", reason: "alert al-1 (topic-probing)" } });
    const [event] = await actionEvents();
    expect(event).toMatchObject({ subject: "probe-1", data: { actionId: action!.id, alertId: "al-1", action: "quarantine", status: "done" } });

    // The same alert growing does not act twice.
    expect(await t.app.respond.executor.handle({ ...probing("al-1", "probe-1"), count: 2 })).toEqual([]);

    const undone = await t.app.respond.executor.undo(action!.id, "operator:alice");
    expect(undone).toMatchObject({ status: "undone", undoneBy: "operator:alice" });
    expect((await t.app.devices.get("probe-1")).status).toBe("active");
    const [undoEvent] = await t.app.audit.list({ type: "respond.undone" });
    expect(undoEvent).toMatchObject({ actor: "operator:alice", data: { actionId: action!.id, alertId: "al-1", action: "quarantine" } });
    await expect(t.app.respond.executor.undo(action!.id, "operator:alice")).rejects.toSatisfy((e) => isMoatError(e, "RESPOND_UNDO_NOT_APPLICABLE"));
  });

  it("answers alert.raised from the raw event stream", async () => {
    await t.app.devices.create({ id: "probe-2", status: "active" }, "test");
    await t.app.respond.playbooks.apply("name: contain\nrule: '*'\nactions: [quarantine]\n", "test");
    const stop = t.app.audit.onEvent((event) => t.app.respond.executor.onEvent(event));
    try {
      await t.app.audit.emit({ type: "alert.raised", severity: "high", actor: "detect", subject: "probe-2", data: { alertId: "al-2", rule: "topic-probing", subject: { kind: "device", id: "probe-2" }, severity: "high", count: 1 } });
      for (let i = 0; i < 100 && (await t.app.devices.get("probe-2")).status !== "quarantined"; i++) await new Promise((r) => setTimeout(r, 20));
      expect((await t.app.devices.get("probe-2")).status).toBe("quarantined");
    } finally {
      stop();
    }
  });

  it("dry-run records what it would do and does nothing", async () => {
    await t.app.devices.create({ id: "probe-3", status: "active" }, "test");
    await t.app.respond.playbooks.apply("name: rehearse\nrule: topic-probing\nmode: dry-run\nactions: [quarantine, revoke]\n", "test");
    const actions = await t.app.respond.executor.handle(probing("al-3", "probe-3"));
    expect(actions.map((a) => [a.action, a.status, a.reason])).toEqual([
      ["quarantine", "dry-run", "would quarantine device probe-3"],
      ["revoke", "dry-run", "would revoke the certificates of device probe-3"],
    ]);
    expect((await t.app.devices.get("probe-3")).status).toBe("active");
    expect((await actionEvents()).map((e) => e.data.status)).toEqual(["dry-run", "dry-run"]);
    await expect(t.app.respond.executor.undo(actions[0]!.id, "test")).rejects.toSatisfy((e) => isMoatError(e, "RESPOND_UNDO_NOT_APPLICABLE"));
  });

  it("the rate cap stops a bad rule from quarantining the fleet, and says so once", async () => {
    for (let i = 0; i < 5; i++) await t.app.devices.create({ id: `fleet-${i}`, status: "active" }, "test");
    await t.app.respond.playbooks.apply("name: capped\nrule: topic-probing\nactions: [quarantine]\nrateLimit: { max: 2, window: 10m }\n", "test");
    const outcomes = [];
    for (let i = 0; i < 5; i++) outcomes.push(...(await t.app.respond.executor.handle(probing(`al-cap-${i}`, `fleet-${i}`))));
    expect(outcomes.map((a) => a.status)).toEqual(["done", "done", "skipped", "skipped", "skipped"]);
    expect(outcomes[2]).toMatchObject({ reason: "rate_cap", detail: { max: 2, used: 2 } });
    const statuses = await Promise.all([0, 1, 2, 3, 4].map(async (i) => (await t.app.devices.get(`fleet-${i}`)).status));
    expect(statuses).toEqual(["quarantined", "quarantined", "active", "active", "active"]);
    const capped = await t.app.audit.list({ type: "respond.rate_capped" });
    expect(capped).toHaveLength(1);
    expect(capped[0]).toMatchObject({ severity: "high", data: { playbook: "capped", alertId: "al-cap-2", max: 2 } });
    // Every action, skipped ones included, is an audit event naming its alert.
    expect((await actionEvents()).map((e) => e.data.alertId)).toEqual(["al-cap-0", "al-cap-1", "al-cap-2", "al-cap-3", "al-cap-4"]);
  });

  it("quarantine and revocation stay off without a playbook", async () => {
    await t.app.devices.create({ id: "probe-4", status: "active" }, "test");
    expect(await t.app.respond.executor.handle(probing("al-4", "probe-4"))).toEqual([]);
    expect((await t.app.devices.get("probe-4")).status).toBe("active");
  });

  it("a revocation is final: undo is refused with a coded error naming the re-issue path", async () => {
    await t.app.devices.create({ id: "probe-5", status: "active" }, "test");
    await t.app.respond.playbooks.apply("name: revoke-them\nrule: topic-probing\nactions: [revoke]\n", "test");
    const [action] = await t.app.respond.executor.handle(probing("al-5", "probe-5"));
    expect(action).toMatchObject({ action: "revoke", status: "done", detail: { serials: [] } });
    const error = await t.app.respond.executor.undo(action!.id, "test").catch((e: unknown) => e);
    expect(isMoatError(error, "RESPOND_UNDO_IRREVERSIBLE")).toBe(true);
    expect((error as Error).message).toMatch(/new certificate/);
  });

  it("bans an address range through the change feed and lifts it on undo", async () => {
    await t.app.respond.playbooks.apply("name: stuffing\nrule: credential-stuffing\nactions: [ban-range, quarantine]\nbanFor: 1h\n", "test");
    const bans = new RangeBans();
    const stop = await t.app.respond.followBans({ banRange: (range, until) => bans.ban(range, until), unbanRange: (range) => bans.unban(range) });
    try {
      const actions = await t.app.respond.executor.handle({ alertId: "al-6", rule: "credential-stuffing", subject: { kind: "address-range", id: "203.0.113.0/24" }, severity: "high", count: 1 });
      // Quarantine does not fit an address range: recorded as skipped, not attempted.
      expect(actions.map((a) => [a.action, a.status])).toEqual([
        ["ban-range", "done"],
        ["quarantine", "skipped"],
      ]);
      for (let i = 0; i < 100 && !bans.covers("203.0.113.77"); i++) await new Promise((r) => setTimeout(r, 20));
      expect(bans.covers("203.0.113.77")).toBe(true);
      expect(bans.covers("::ffff:203.0.113.9")).toBe(true);
      expect(bans.covers("203.0.114.1")).toBe(false);
      expect(await respondStore(t.app.store).bans.active(new Date().toISOString())).toMatchObject([{ range: "203.0.113.0/24", actionId: actions[0]!.id }]);

      await t.app.respond.executor.undo(actions[0]!.id, "test");
      for (let i = 0; i < 100 && bans.covers("203.0.113.77"); i++) await new Promise((r) => setTimeout(r, 20));
      expect(bans.covers("203.0.113.77")).toBe(false);
    } finally {
      stop();
    }
  });

  it("a new server picks up the active bans at start", async () => {
    await t.app.respond.playbooks.apply("name: stuffing\nrule: credential-stuffing\nactions: [ban-range]\nbanFor: forever\n", "test");
    await t.app.respond.executor.handle({ alertId: "al-7", rule: "credential-stuffing", subject: { kind: "address-range", id: "2001:db8:1:2::/64" }, severity: "high", count: 1 });
    const bans = new RangeBans();
    const stop = await t.app.respond.followBans({ banRange: (range, until) => bans.ban(range, until), unbanRange: (range) => bans.unban(range) });
    stop();
    expect(bans.ranges()).toEqual(["2001:db8:1:2::/64"]);
    expect(bans.covers("2001:db8:1:2:ffff::1")).toBe(true);
    expect(bans.covers("2001:db8:1:3::1")).toBe(false);
  });
});

describe("playbook validation", () => {
  it.each([
    ["name: x\nrule: r\nactions: [explode]\n", /action "explode"/],
    ["name: x\nrule: r\nactions: [quarantine]\nratelimit: 3\n", /unknown playbook key "ratelimit"/],
    ["name: x\nrule: r\nactions: [quarantine]\nrateLimit: { max: 0 }\n", /rateLimit.max/],
    ["name: X!\nrule: r\nactions: [quarantine]\n", /name/],
    ["name: x\nrule: r\nmode: maybe\nactions: [quarantine]\n", /mode/],
    ["- not\n- a map\n", /mapping/],
    ["name: [unclosed\n", /not valid YAML/],
  ])("refuses %j and stores nothing", async (source, message) => {
    const error = await t.app.respond.playbooks.apply(source, "test").catch((e: unknown) => e);
    expect(isMoatError(error, "PLAYBOOK_INVALID")).toBe(true);
    expect((error as Error).message).toMatch(message);
    expect(await t.app.respond.playbooks.list()).toEqual([]);
  });

  it("applying announces the change on the feed and audits a containment playbook as high", async () => {
    const before = await t.app.store.latestSeq();
    await t.app.respond.playbooks.apply("name: contain\nrule: topic-probing\nactions: [quarantine]\n", "test");
    const changes = await t.app.store.changesAfter(before);
    expect(changes).toMatchObject([{ kind: "playbook.changed", subject: "contain", data: { op: "applied" } }]);
    const [event] = await t.app.audit.list({ type: "playbook.applied" });
    expect(event).toMatchObject({ severity: "high", data: { created: true, mode: "enforce", actions: ["quarantine"] } });
  });
});
