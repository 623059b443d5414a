import { foundation } from "./0001_foundation.js";
import { caRegistry } from "./0002_ca_registry.js";
import { caKeyLocation } from "./0041_ca_key_location.js";
import { pki } from "./0010_pki.js";
import { firmware } from "./0050_firmware.js";
import { policy } from "./0020_policy.js";
import { broker } from "./0030_broker.js";
import { scanner } from "./0070_scanner.js";
import type { MoatMigration } from "./types.js";

/** Every migration, by name; names sort in the order they run. Add yours at your domain's line. */
export const MIGRATIONS: Record<string, MoatMigration> = {
  "0001_foundation": foundation,
  "0002_ca_registry": caRegistry,
  // --- pki (0010) ---
  "0010_pki": pki,
  // --- policy (0020) ---
  "0020_policy": policy,
  // --- broker (0030) ---
  "0030_broker": broker,
  // --- keys (0040) ---
  "0041_ca_key_location": caKeyLocation,
  // --- firmware (0050) ---
  "0050_firmware": firmware,
  // --- network (0060) ---
  // --- scanner (0070) ---
  "0070_scanner": scanner,
};
