import { foundation } from "./0001_foundation.js";
import { caRegistry } from "./0002_ca_registry.js";
import { pki } from "./0010_pki.js";
import { policy } from "./0020_policy.js";
import { broker } from "./0030_broker.js";
import { caKeyLocation } from "./0041_ca_key_location.js";
import { firmware } from "./0050_firmware.js";
import { scanner } from "./0070_scanner.js";
import { foreignKeys } from "./0071_foreign_keys.js";
import { auditMerkleTree } from "./0072_audit_merkle_tree.js";
import { firmwareKeyLocation } from "./0073_firmware_key_location.js";
import { groupSettingsFirmwareInventory } from "./0075_group_settings_firmware_inventory.js";
import { respond } from "./0076_respond.js";
import { detect } from "./0078_detect.js";
import type { MoatMigration } from "./types.js";
import { mqttSessions } from "./0074_mqtt_sessions.js";
import { postureCompliance } from "./0077_posture_compliance.js";

export interface NamedMigration {
  readonly name: string;
  readonly migration: MoatMigration;
}

/**
 * The frozen baseline: the migrations of the era when each domain owned a number range and they ran
 * in any order. Installations of that era recorded these names in whatever order they were written,
 * so among themselves (and only among themselves) the runner accepts any subset in any order. Never
 * add to, rename or edit these.
 */
export const BASELINE: readonly string[] = [
  "0001_foundation",
  "0002_ca_registry",
  "0010_pki",
  "0020_policy",
  "0030_broker",
  "0041_ca_key_location",
  "0050_firmware",
  "0070_scanner",
];

/**
 * The whole schema as one ordered sequence: every database, fresh or upgraded, runs these in this
 * order. To add one, append it with the next number (last + 1) and a name saying what it changes;
 * see docs/dev/conventions.md ("Migrations").
 */
export const MIGRATIONS: readonly NamedMigration[] = [
  { name: "0001_foundation", migration: foundation },
  { name: "0002_ca_registry", migration: caRegistry },
  { name: "0010_pki", migration: pki },
  { name: "0020_policy", migration: policy },
  { name: "0030_broker", migration: broker },
  { name: "0041_ca_key_location", migration: caKeyLocation },
  { name: "0050_firmware", migration: firmware },
  { name: "0070_scanner", migration: scanner },
  // --- one sequence from here on: append below with the next number ---
  { name: "0071_foreign_keys", migration: foreignKeys },
  { name: "0072_audit_merkle_tree", migration: auditMerkleTree },
  { name: "0073_firmware_key_location", migration: firmwareKeyLocation },
  { name: "0074_mqtt_sessions", migration: mqttSessions },
  { name: "0075_group_settings_firmware_inventory", migration: groupSettingsFirmwareInventory },
  { name: "0076_respond", migration: respond },
  { name: "0077_posture_compliance", migration: postureCompliance },
  { name: "0078_detect", migration: detect },
];
