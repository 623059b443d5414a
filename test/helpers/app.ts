import { loadConfig, type SettingPath } from "../../src/config/index.js";
import { initialize, type App } from "../../src/core.js";
import { createTestDatabase, type TestDatabase } from "./dialects.js";

export interface TestApp {
  app: App;
  adminToken: string;
  database: TestDatabase;
  /** Flags to hand a child `moat` process so it opens the same installation. */
  cliArgs: string[];
  cleanup(): Promise<void>;
}

/** A freshly initialised installation (moat init) on a fresh database of the given dialect. */
export async function createTestApp(dialect: "sqlite" | "postgres" = "sqlite", flags: Partial<Record<SettingPath, unknown>> = {}): Promise<TestApp> {
  const database = await createTestDatabase(dialect);
  const config = loadConfig({ env: {}, flags: { dataDir: database.dataDir, databaseUrl: database.databaseUrl ?? undefined, logLevel: "silent", "feed.pollMs": 50, ...flags } });
  const { app, adminToken } = await initialize(config, { trustDomain: "test.moat", keyType: "ec-p256", hostnames: ["localhost", "127.0.0.1"] });
  return {
    app,
    adminToken,
    database,
    cliArgs: ["--data-dir", database.dataDir, ...(database.databaseUrl ? ["--database-url", database.databaseUrl] : [])],
    cleanup: async () => {
      await app.close();
      await database.cleanup();
    },
  };
}
