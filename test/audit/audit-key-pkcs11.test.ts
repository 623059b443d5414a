import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCheckpoint, parseVerifierKey, verifyInclusionProof } from "../../src/audit/index.js";
import type { MoatConfig } from "../../src/config/index.js";
import { createApp, initialize, type App } from "../../src/core.js";
import { ED25519_KEY_LABEL_PREFIX, Pkcs11Token, pkcs11ConfigFrom } from "../../src/keys/index.js";
import { tempDir } from "../helpers/temp.js";
import { softHsmAvailable, softHsmInstallationConfig } from "../keys-softhsm.js";

const ok = softHsmAvailable();
const PIN = "1357-audit-test";
const TOKEN = "moat-audit";

describe.skipIf(!ok)("the audit key in a PKCS#11 token (SoftHSM2, Ed25519 via CKM_EDDSA)", () => {
  const dir = tempDir("moat-audit-pkcs11-");
  let config: MoatConfig;
  let app: App | undefined;

  beforeAll(async () => {
    config = softHsmInstallationConfig(dir.path, TOKEN, PIN);
    app = (await initialize(config, { trustDomain: "p11.example", keyType: "ec-p256", hostnames: ["localhost"] })).app;
  });
  afterAll(async () => {
    await app?.close();
    dir.cleanup();
  });

  it("is generated in the token at init, non-extractable, and only its location is stored", async () => {
    const row = await app!.store.db.selectFrom("audit_keys").selectAll().executeTakeFirstOrThrow();
    expect(row.sealed_private_key).toBeNull();
    expect(row.location).toMatch(new RegExp(`^pkcs11:${TOKEN}/${ED25519_KEY_LABEL_PREFIX}audit-[0-9a-f]{12}$`));
    const token = Pkcs11Token.open(pkcs11ConfigFrom(config));
    try {
      const [key] = token.find("private", row.location!.split("/")[1]!);
      expect(key).toBeDefined();
      expect(token.protection(key!.handle)).toEqual({ extractable: false, sensitive: true });
      expect(token.valueIsReadable(key!.handle)).toBe(false);
    } finally {
      token.close();
    }
  });

  it("signs checkpoints in the token that verify with the exported key, also after a restart", async () => {
    await app!.audit.emit({ type: "test.event", subject: "one" });
    const key = parseVerifierKey(await app!.auditKeys.verifierKey());
    const first = await app!.auditCheckpoints.create();
    expect(openCheckpoint(first.note, key, "p11.example/moat-audit").size).toBe(first.size);
    expect((await app!.auditKeys.signer()).location).toMatch(/^pkcs11:/);
    await app!.close();
    app = await createApp(config, { services: [] });
    await app.audit.emit({ type: "test.event", subject: "two" });
    const proof = await app.auditCheckpoints.prove(first.size + 1);
    expect(verifyInclusionProof(JSON.parse(JSON.stringify(proof)), key).size).toBe(first.size + 1);
    expect(await app.audit.verify({ checkpoint: openCheckpoint(first.note, key) })).toMatchObject({ ok: true, problems: [] });
  });
});
