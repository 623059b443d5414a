/**
 * Numeric flags have bounds: a value outside them is a usage error (exit 2) naming the range, before
 * anything is changed; never clamped, never silently replaced by a default.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.js";
import { tempDir } from "../helpers/temp.js";

describe("numeric CLI flags", () => {
  const dir = tempDir();
  const dataDir = join(dir.path, "data");
  const base = ["--data-dir", dataDir];

  beforeAll(async () => {
    expect((await runCli([...base, "init", "--trust-domain", "bounds.test"])).code).toBe(0);
    expect((await runCli([...base, "device", "add", "cam-1"])).code).toBe(0);
  });
  afterAll(() => dir.cleanup());

  it("--days 0 is refused, not replaced by the 90-day default", async () => {
    const result = await runCli([...base, "cert", "issue", "--device", "cam-1", "--generate-key", "--key-out", join(dir.path, "k.pem"), "--days", "0", "--json"]);
    expect(result).toMatchObject({ code: 2, stdout: "" });
    expect(result.stderr).toContain("'0' is outside 1-3650");
    const list = await runCli([...base, "cert", "list", "--device", "cam-1", "--json"]);
    expect(JSON.parse(list.stdout)).toEqual({ certificates: [] });
  });

  it.each([
    [["cert", "issue", "--device", "cam-1", "--generate-key", "--key-out", "/nonexistent/k", "--days", "3651"], "outside 1-3650"],
    [["cert", "issue", "--device", "cam-1", "--generate-key", "--key-out", "/nonexistent/k", "--days", "1e3"], "not a whole number"],
    [["cert", "issue", "--device", "cam-1", "--generate-key", "--key-out", "/nonexistent/k", "--days", "-5"], "not a whole number"],
    [["scan", "run", "127.0.0.1", "--concurrency", "0"], "outside 1-4096"],
    [["scan", "run", "127.0.0.1", "--max-attempts", "51"], "outside 1-50"],
    [["device", "secret", "rotate", "cam-1", "--grace-seconds", "604801"], "outside 0-604800"],
    [["firmware", "tuf", "init", "--root-keys", "10"], "outside 1-9"],
    [["serve", "--api-port", "65536"], "outside 0-65535"],
  ])("%j is a usage error", async (args, message) => {
    const result = await runCli([...base, ...args]);
    expect(result.stderr).toContain(message);
    expect(result.code).toBe(2);
  });
});
