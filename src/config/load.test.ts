import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { tempDir } from "../../test/helpers/temp.js";
import { isMoatError } from "../errors.js";
import { envNameOf, loadConfig } from "./load.js";

describe("configuration", () => {
  const dir = tempDir();
  afterEach(() => dir.cleanup());

  const withYaml = (yaml: string) => {
    const dataDir = join(dir.path, `d${Math.random().toString(16).slice(2)}`);
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, "moat.yaml"), yaml);
    return dataDir;
  };

  it("names environment variables after the setting path", () => {
    expect(envNameOf("apiPort")).toBe("MOAT_API_PORT");
    expect(envNameOf("broker.mqttPort")).toBe("MOAT_BROKER_MQTT_PORT");
    expect(envNameOf("databaseUrl")).toBe("MOAT_DATABASE_URL");
  });

  it("takes flags over environment over moat.yaml over defaults", () => {
    const dataDir = withYaml("apiPort: 9001\npkiPort: 9002\nbroker:\n  mqttPort: 9003\n");
    const config = loadConfig({ env: { MOAT_DATA_DIR: dataDir, MOAT_PKI_PORT: "9102" }, flags: { apiPort: 9201 } });
    expect(config.apiPort).toBe(9201);
    expect(config.pkiPort).toBe(9102);
    expect(config["broker.mqttPort"]).toBe(9003);
    expect(config.host).toBe("127.0.0.1");
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("resolves a relative data dir against the working directory", () => {
    expect(loadConfig({ env: {}, cwd: "/srv" }).dataDir).toBe("/srv/moat-data");
  });

  it.each([
    [{ MOAT_API_PORT: "70000" }, "apiPort", "an integer from 0 to 65535"],
    [{ MOAT_LOG_LEVEL: "loud" }, "logLevel", "fatal | error"],
    [{ MOAT_DATABASE_URL: "mysql://x" }, "databaseUrl", "postgres: or postgresql:"],
    [{ MOAT_KEYS_PROVIDER: "vault" }, "keys.provider", "file | env | pkcs11"],
    [{ MOAT_BROKER_ENABLED: "maybe" }, "broker.enabled", "true | false"],
  ])("refuses %o naming the setting and what is allowed", (env, setting, allowed) => {
    let error: unknown;
    try {
      loadConfig({ env });
    } catch (e) {
      error = e;
    }
    expect(isMoatError(error, "CONFIG_INVALID")).toBe(true);
    expect((error as Error).message).toContain(`'${setting}'`);
    expect((error as Error).message).toContain(allowed);
  });

  it("refuses unknown keys and broken YAML in moat.yaml", () => {
    expect(() => loadConfig({ env: { MOAT_DATA_DIR: withYaml("apiPrt: 1\n") } })).toThrow(/unknown setting 'apiPrt'/);
    expect(() => loadConfig({ env: { MOAT_DATA_DIR: withYaml("apiPort: [\n") } })).toThrow(/not valid YAML/);
  });

  it("accepts secrets only from the environment and never echoes them", () => {
    expect(() => loadConfig({ env: { MOAT_DATA_DIR: withYaml("masterKey: abc\n") } })).toThrow(/may not be written in moat.yaml/);
    expect(() => loadConfig({ env: {}, flags: { masterKey: "abc" } })).toThrow(/accepted only from MOAT_MASTER_KEY/);
    expect(loadConfig({ env: { MOAT_MASTER_KEY: "c2VjcmV0" } }).masterKey).toBe("c2VjcmV0");
  });
});
