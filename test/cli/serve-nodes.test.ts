/** A second `moat serve` on one SQLite data dir starts, and says what the two nodes share and what not. */
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { spawnServe } from "../helpers/serve.js";
import { tempDir } from "../helpers/temp.js";

const serve = (dataDir: string) => spawnServe(["--data-dir", dataDir, "--pki-port", "0"]);

describe("two moat serve on one SQLite data dir", () => {
  const dir = tempDir();
  const dataDir = join(dir.path, "data");
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    dir.cleanup();
  });

  it("the second node warns, naming the other node and what is and is not shared", async () => {
    expect((await runCli(["--data-dir", dataDir, "init"])).code).toBe(0);
    const first = serve(dataDir);
    children.push(first.child);
    await first.ready;
    const second = serve(dataDir);
    children.push(second.child);
    await second.ready;
    const warning = second.stderr();
    expect(warning).toContain(`another moat serve (pid ${first.child.pid})`);
    expect(warning).toMatch(/Shared between the two: the database .* change feed/);
    expect(warning).toMatch(/Not shared: MQTT sessions/);
    expect(first.stderr()).not.toContain("another moat serve");
  });
});
