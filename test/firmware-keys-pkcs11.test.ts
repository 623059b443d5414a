import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { MoatConfig } from "../src/config/index.js";
import { createApp, initialize, type App } from "../src/core.js";
import { serializeManifest, verifyFirmware } from "../src/firmware/index.js";
import { ED25519_KEY_LABEL_PREFIX, P256_KEY_LABEL_PREFIX, Pkcs11Token, pkcs11ConfigFrom } from "../src/keys/index.js";
import { writeImage } from "./firmware-fixtures.js";
import { tempDir } from "./helpers/temp.js";
import { softHsmAvailable, softHsmInstallationConfig } from "./keys-softhsm.js";

const ok = softHsmAvailable();
const PIN = "2468-firmware-test";
const TOKEN = "moat-firmware";
const actor = "test";
const facts = (version: string) => ({ vendor: "Acme", hardwareId: "sensor-v2", version, securityVersion: 1 });

describe.skipIf(!ok)("firmware keys in a PKCS#11 token (SoftHSM2: Ed25519 via CKM_EDDSA, P-256 via CKM_ECDSA)", () => {
  const dir = tempDir("moat-fw-pkcs11-");
  let config: MoatConfig;
  let app: App | undefined;

  async function row(name: string) {
    return app!.store.db.selectFrom("firmware_keys").selectAll().where("name", "=", name).executeTakeFirstOrThrow();
  }

  async function signAndVerify(keyName: string, version: string) {
    const image = writeImage(dir.path, `${keyName}-${version}.bin`, 10_000);
    const manifest = await app!.firmware.keys.signImage({ image, keyName, actor, facts: facts(version) });
    const trustedRoots = [await app!.firmware.keys.rootPublicKey()];
    return verifyFirmware(image, serializeManifest(manifest), { trustedRoots, hardwareId: "sensor-v2" });
  }

  beforeAll(async () => {
    config = softHsmInstallationConfig(dir.path, TOKEN, PIN);
    app = (await initialize(config, { trustDomain: "fw.example", keyType: "ec-p256", hostnames: ["localhost"] })).app;
  });
  afterAll(async () => {
    await app?.close();
    dir.cleanup();
  });

  it("generates Ed25519 and P-256 keys in the token, non-extractable, storing only their location", async () => {
    await app!.firmware.keys.createRoot({ name: "root", alg: "ed25519", actor });
    const ed = await app!.firmware.keys.generateSigningKey({ name: "rel-ed", alg: "ed25519", actor });
    const p256 = await app!.firmware.keys.generateSigningKey({ name: "rel-p256", alg: "ecdsa-p256", actor });
    expect(ed.location).toMatch(new RegExp(`^pkcs11:${TOKEN}/${ED25519_KEY_LABEL_PREFIX}firmware-signing-[0-9a-f]{12}$`));
    expect(p256.location).toMatch(new RegExp(`^pkcs11:${TOKEN}/${P256_KEY_LABEL_PREFIX}firmware-signing-[0-9a-f]{12}$`));
    expect(ed.offline).toBe(false);
    const token = Pkcs11Token.open(pkcs11ConfigFrom(config));
    try {
      for (const name of ["root", "rel-ed", "rel-p256"]) {
        const stored = await row(name);
        expect(stored.sealed_private_key).toBeNull();
        expect(stored.location).toMatch(new RegExp(`^pkcs11:${TOKEN}/moat-`));
        const label = stored.location!.split("/")[1]!;
        const [key] = token.find("private", label);
        expect(key).toBeDefined();
        expect(token.protection(key!.handle)).toEqual({ extractable: false, sensitive: true });
        expect(token.valueIsReadable(key!.handle)).toBe(false);
      }
      // A taken name is refused before anything is generated, so it leaves no unused key in the token.
      const before = token.find("private", P256_KEY_LABEL_PREFIX).length;
      await expect(app!.firmware.keys.generateSigningKey({ name: "rel-p256", alg: "ecdsa-p256", actor })).rejects.toMatchObject({ code: "FIRMWARE_KEY_EXISTS" });
      expect(token.find("private", P256_KEY_LABEL_PREFIX).length).toBe(before);
    } finally {
      token.close();
    }
  });

  it("signs manifests in the token that the secure-boot verifier accepts, also after reopening", async () => {
    expect(await signAndVerify("rel-ed", "1.0.0")).toMatchObject({ strength: "signed", signers: [{ name: "rel-ed", alg: "ed25519" }] });
    expect(await signAndVerify("rel-p256", "1.0.1")).toMatchObject({ strength: "signed", signers: [{ name: "rel-p256", alg: "ecdsa-p256" }] });
    await app!.close();
    app = await createApp(config, { services: ["firmware"] });
    expect(await signAndVerify("rel-p256", "1.0.2")).toMatchObject({ signers: [{ name: "rel-p256" }] });
    expect(await signAndVerify("rel-ed", "1.0.3")).toMatchObject({ signers: [{ name: "rel-ed" }] });
    // The root in the token certifies new keys and signs revocation lists after the restart too.
    const { document } = await app.firmware.keys.revoke({ name: "rel-ed", reason: "superseded", actor });
    const image = writeImage(dir.path, "revoked.bin", 1000);
    const manifest = await app.firmware.keys.signImage({ image, keyName: "rel-p256", actor, facts: facts("1.0.4") });
    expect(await verifyFirmware(image, manifest, { trustedRoots: [await app.firmware.keys.rootPublicKey()], revocations: document })).toMatchObject({ signers: [{ name: "rel-p256" }] });
  });

  it("keeps hybrid keys sealed under the token-held KEK (the token has no ML-DSA)", async () => {
    const hybrid = await app!.firmware.keys.generateSigningKey({ name: "rel-hybrid", alg: "hybrid-ed25519-mldsa65", actor });
    expect(hybrid.location).toBeNull();
    const stored = await row("rel-hybrid");
    expect(stored.location).toBeNull();
    expect(Buffer.from(stored.sealed_private_key!).subarray(0, 3).toString()).toBe("MEV");
    expect(await signAndVerify("rel-hybrid", "2.0.0")).toMatchObject({ signers: [{ name: "rel-hybrid", alg: "hybrid-ed25519-mldsa65" }] });
  });
});
