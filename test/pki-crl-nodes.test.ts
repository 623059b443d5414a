/**
 * Several processes on one database serve the same, newest CRL: a node that signs a CRL says so on
 * the change feed, and the others drop the older one they cached.
 */
import { afterEach, expect, it } from "vitest";
import { loadConfig } from "../src/config/index.js";
import { createApp, type App } from "../src/core.js";
import { createTestApp, type TestApp } from "./helpers/app.js";
import { forEachDialect } from "./helpers/dialects.js";

async function eventually<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = await read();
    if (done(value)) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

forEachDialect("CRL across nodes", (dialect) => {
  let t: TestApp | undefined;
  let other: App | undefined;
  afterEach(async () => {
    await other?.close();
    await t?.cleanup();
  });

  it("a CRL signed by one node is the one every node serves", async () => {
    t = await createTestApp(dialect);
    other = await createApp(loadConfig({ env: {}, flags: { dataDir: t.database.dataDir, databaseUrl: t.database.databaseUrl ?? undefined, logLevel: "silent", "feed.pollMs": 50 } }));
    const issuing = (await t.app.ca.active("issuing")).serialHex;
    // Both nodes have served (and cached) the same CRL.
    const first = await t.app.pki.crls.current(issuing);
    expect((await other.pki.crls.current(issuing)).number).toBe(first.number);

    // One node re-signs (its scheduler, or a revocation it handled); the other is not due yet.
    const newer = await t.app.pki.crls.refresh(issuing);
    expect(newer.number).toBe(first.number + 1);
    const served = await eventually("the other node to serve the new CRL", () => other!.pki.crls.current(issuing), (crl) => crl.number === newer.number);
    expect(served.der.equals(newer.der)).toBe(true);
  });
});
