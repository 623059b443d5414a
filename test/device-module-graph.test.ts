import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "./helpers/cli.js";
import { builtModulesOf, loadedModules, packagesOf } from "./helpers/module-graph.js";

// The device side must run without the server: loading `moat/device` or `moat/firmware/verify`
// loads no server package and no server module. This follows the real module graph of the built
// package (dist/, which `npm test` builds first): a child node resolves the export through the
// package's own `exports` map (a self-reference); test/helpers/module-graph.ts records what loads.

/** Packages the device side must never load (a name, or a name followed by `/…`). */
const SERVER_PACKAGES = ["fastify", "@fastify/swagger", "@fastify/swagger-ui", "aedes", "aedes-persistence-redis", "mqemitter-redis", "kysely", "better-sqlite3", "pg", "ioredis", "pino", "commander"];
/** Built modules of the server: whole folders, the composition roots, and firmware's server-side services. */
const SERVER_MODULES = [
  /^(store|api|broker|cli|web)\//,
  /^(main|core|serve)\.js$/,
  /^firmware\/(index|tuf-repository|tuf-service|tuf-http-handler|tuf-keys|campaign|campaign-service|firmware-key-service|ota-messages)\.js$/,
];

/** The server packages and server modules among `modules`. */
function serverParts(modules: readonly string[]): { packages: string[]; files: string[] } {
  return {
    packages: packagesOf(modules).filter((name) => SERVER_PACKAGES.includes(name)),
    files: builtModulesOf(modules).filter((file) => SERVER_MODULES.some((pattern) => pattern.test(file))),
  };
}

const built = existsSync(join(REPO_ROOT, "dist/device/index.js")) && existsSync(join(REPO_ROOT, "dist/firmware/verify.js"));

describe("the device side's module graph (built package, real loader)", () => {
  it("dist/ is built (npm test builds it before the tests)", () => {
    expect(built, "run `npm run build` first").toBe(true);
  });

  it.runIf(built)("moat/device loads the SDK, TUF client, E2E and verifier, and nothing of the server", async () => {
    const modules = await loadedModules(["moat/device"]);
    const dist = (file: string) => join(REPO_ROOT, "dist", file);
    // The export resolved through package.json to the built door, and the graph is the real one.
    expect(modules).toEqual(
      expect.arrayContaining([
        dist("device/index.js"),
        dist("device/ota-client.js"),
        dist("firmware/secure-boot-verifier.js"),
        dist("crypto/e2e-channel.js"),
        // The SDK proper: EST, the device folder, MQTT over mTLS, renewal and backoff.
        dist("device/moat-device.js"),
        dist("device/server-client.js"),
        dist("device/device-status.js"),
        dist("device/device-dir.js"),
        dist("device/csr.js"),
        dist("device/renewal.js"),
        dist("device/device-jwt.js"),
        dist("device/device-e2e.js"),
        dist("device/device-ota.js"),
        dist("crypto/der/encode.js"),
      ]),
    );
    // MQTT.js is the device's client; no PKCS#11 addon unless a token key is used.
    expect(modules.some((m) => m.includes("/node_modules/mqtt/"))).toBe(true);
    expect(modules.filter((m) => m.includes("/node_modules/pkcs11js/") || m.endsWith("/device/pkcs11-key.js") || m.includes("/dist/keys/"))).toEqual([]);
    expect(modules.some((m) => m.includes("/node_modules/tuf-js/"))).toBe(true);
    expect(serverParts(modules)).toEqual({ packages: [], files: [] });
  });

  it.runIf(built)("moat/firmware/verify loads the secure-boot check alone: no server, no device SDK, no TUF client", async () => {
    const modules = await loadedModules(["moat/firmware/verify"]);
    expect(modules).toContain(join(REPO_ROOT, "dist/firmware/secure-boot-verifier.js"));
    expect(serverParts(modules)).toEqual({ packages: [], files: [] });
    expect(modules.filter((m) => m.includes("/dist/device/") || m.includes("/node_modules/tuf-js/"))).toEqual([]);
  });

  it.runIf(built)("the check sees a server package or module when one is loaded (so the tests above can fail)", async () => {
    // pino is CommonJS and requires its own dependencies; the firmware door brings the server-side services.
    const modules = await loadedModules(["moat/firmware/verify", "pino", "./dist/firmware/index.js"]);
    const found = serverParts(modules);
    expect(found.packages).toEqual(["pino"]);
    expect(found.files).toEqual(expect.arrayContaining(["firmware/index.js", "firmware/tuf-repository.js", "firmware/campaign-service.js"]));
  });
});
