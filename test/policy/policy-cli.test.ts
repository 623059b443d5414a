import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";

describe("moat role / moat policy (built CLI, SQLite)", () => {
  const dir = tempDir();
  const moat = (...args: string[]) => runCli(["--data-dir", join(dir.path, "data"), ...args]);

  beforeAll(async () => {
    expect((await moat("init", "--trust-domain", "plant.example", "--json")).code).toBe(0);
    expect((await moat("device", "add", "s1", "--group", "boilers", "--active")).code).toBe(0);
  });
  afterAll(() => dir.cleanup());

  it("creates a role from --allow/--deny specs and shows it", async () => {
    const created = await moat("role", "create", "sensor", "--allow", "publish:plant/${device.group}/${device.id}/#", "--deny", "subscribe:#", "--json");
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({
      name: "sensor",
      rules: [
        { effect: "allow", action: "publish", resource: "plant/${device.group}/${device.id}/#" },
        { effect: "deny", action: "subscribe", resource: "#" },
      ],
    });
    const list = JSON.parse((await moat("role", "list", "--json")).stdout) as { name: string; builtin: boolean }[];
    expect(list.map((r) => [r.name, r.builtin])).toEqual([
      ["device", true],
      ["quarantine", true],
      ["admin", true],
      ["operator", true],
      ["auditor", true],
      ["sensor", false],
    ]);
    const shown = await moat("role", "show", "sensor");
    expect(shown.stdout).toContain("deny subscribe:#");
  });

  it("refuses a malformed rule before touching anything (exit 1, coded error)", async () => {
    const bad = await moat("role", "create", "broken", "--allow", "publish:a/#/b");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error POLICY_RULE_INVALID: /);
    expect((await moat("role", "show", "broken")).stderr).toMatch(/ROLE_NOT_FOUND/);
  });

  it("assigns to a group; policy check prints allow or deny with the deciding rule and exits 0 either way", async () => {
    expect((await moat("role", "assign", "sensor", "--group", "boilers")).stdout).toContain("assigned: role sensor → group boilers");
    const allow = await moat("policy", "check", "--device", "s1", "--action", "publish", "--topic", "plant/boilers/s1/temp");
    expect(allow.code).toBe(0);
    expect(allow.stdout).toMatch(/^ALLOW publish plant\/boilers\/s1\/temp for s1\n {2}rule 0 of role sensor: allow publish:plant\/\$\{device.group\}\/\$\{device.id\}\/#/);
    const deny = await moat("policy", "check", "--device", "s1", "--action", "subscribe", "--topic", "devices/s1/commands/#", "--json");
    expect(deny.code).toBe(0);
    expect(JSON.parse(deny.stdout)).toMatchObject({ allow: false, reason: "rule", rule: { role: "sensor", effect: "deny", resource: "#" }, roles: ["device", "sensor"] });
  });

  it("exit 1 on errors, 2 on usage errors", async () => {
    const badTopic = await moat("policy", "check", "--device", "s1", "--action", "publish", "--topic", "a/+");
    expect([badTopic.code, badTopic.stderr]).toEqual([1, expect.stringMatching(/^error POLICY_TOPIC_INVALID/)]);
    expect((await moat("policy", "check", "--device", "ghost", "--action", "publish", "--topic", "a")).code).toBe(1);
    expect((await moat("policy", "check", "--device", "s1", "--action", "delete", "--topic", "a")).code).toBe(2);
    const noTarget = await moat("role", "assign", "sensor");
    expect([noTarget.code, noTarget.stderr]).toEqual([2, expect.stringContaining("exactly one of --device")]);
    expect((await moat("role", "assign", "sensor", "--device", "s1", "--group", "g")).code).toBe(2);
  });

  it("lint reports over-broad rules and --fail-on sets the exit code", async () => {
    await moat("role", "create", "wide", "--allow", "subscribe:#", "--allow", "publish:$SYS/x");
    await moat("role", "assign", "wide", "--device", "s1");
    const lint = await moat("policy", "lint", "--json");
    expect(lint.code).toBe(0);
    const findings = JSON.parse(lint.stdout) as { role: string; code: string }[];
    expect(findings.filter((f) => f.role === "wide").map((f) => f.code)).toEqual(["matches-everything", "sys-topic"]);
    expect((await moat("policy", "lint", "--fail-on", "high")).code).toBe(1);
  });

  it("unassigns and deletes; built-in roles stay", async () => {
    expect((await moat("role", "unassign", "wide", "--device", "s1")).code).toBe(0);
    expect((await moat("role", "unassign", "wide", "--device", "s1")).stderr).toMatch(/ROLE_ASSIGNMENT_NOT_FOUND/);
    const deleted = await moat("role", "delete", "sensor", "--json");
    expect(JSON.parse(deleted.stdout)).toMatchObject({ role: "sensor", removedAssignments: [{ kind: "group", target: "boilers" }] });
    expect((await moat("role", "delete", "device")).stderr).toMatch(/^error ROLE_BUILTIN/);
  });
});
