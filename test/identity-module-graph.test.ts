import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "./helpers/cli.js";
import { builtModulesOf, loadedModules, packagesOf } from "./helpers/module-graph.js";

// Device credentials live in identity, not in the broker, so `moat device key|secret …` and every
// other user of the credential service runs without the MQTT data plane: no aedes, no Redis client,
// no broker module. Checked on the built package's real module graph.

const DATA_PLANE_PACKAGES = ["aedes", "aedes-persistence-redis", "mqemitter-redis", "ioredis"];

function dataPlaneParts(modules: readonly string[]): { packages: string[]; files: string[] } {
  return {
    packages: packagesOf(modules).filter((name) => DATA_PLANE_PACKAGES.includes(name)),
    files: builtModulesOf(modules).filter((file) => file.startsWith("broker/")),
  };
}

const built = existsSync(join(REPO_ROOT, "dist/identity/index.js")) && existsSync(join(REPO_ROOT, "dist/cli/commands/device.js"));

describe("identity's module graph (built package, real loader)", () => {
  it("dist/ is built (npm test builds it before the tests)", () => {
    expect(built, "run `npm run build` first").toBe(true);
  });

  it.runIf(built)("the identity door loads no data plane, no PKI and no store", async () => {
    const modules = await loadedModules(["./dist/identity/index.js"]);
    expect(builtModulesOf(modules)).toEqual(expect.arrayContaining(["identity/device-credentials.js", "identity/enrollment-tokens.js"]));
    expect(dataPlaneParts(modules)).toEqual({ packages: [], files: [] });
    expect(builtModulesOf(modules).filter((file) => /^(pki|store|policy)\//.test(file))).toEqual([]);
  });

  it.runIf(built)("`moat device key|secret` (the command module over the core) loads no data plane", async () => {
    const modules = await loadedModules(["./dist/core.js", "./dist/cli/commands/device.js"]);
    expect(builtModulesOf(modules)).toEqual(expect.arrayContaining(["core.js", "cli/commands/device.js", "identity/device-credentials.js"]));
    expect(dataPlaneParts(modules)).toEqual({ packages: [], files: [] });
  });

  it.runIf(built)("the check sees the data plane when it is loaded (so the tests above can fail)", async () => {
    const found = dataPlaneParts(await loadedModules(["./dist/identity/index.js", "./dist/broker/index.js"]));
    expect(found.packages).toEqual(expect.arrayContaining(["aedes"]));
    expect(found.files).toEqual(expect.arrayContaining(["broker/index.js", "broker/authenticator.js"]));
  });
});
