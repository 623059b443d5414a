import type { Kysely } from "kysely";
import type { MoatMigration } from "./types.js";

/**
 * Per-group settings (allowed source networks, silence window, minimum firmware security version) and
 * the per-device firmware inventory (what each device last reported running). Groups stay names on
 * devices, so `group_settings` has no foreign key: settings may be written before a device joins.
 */
export const groupSettingsFirmwareInventory: MoatMigration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable("group_settings")
      .addColumn("device_group", "text", (c) => c.primaryKey())
      .addColumn("allowed_cidrs", "text")
      .addColumn("silence_window", "text")
      .addColumn("min_security_version", "bigint")
      .addColumn("updated_at", "text", (c) => c.notNull())
      .addColumn("updated_by", "text", (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("firmware_inventory")
      // A report describes one device and means nothing without it: it goes when the device is deleted.
      .addColumn("device_id", "text", (c) => c.primaryKey().references("devices.id").onDelete("cascade"))
      .addColumn("version", "text", (c) => c.notNull())
      .addColumn("security_version", "bigint", (c) => c.notNull())
      .addColumn("reported_at", "text", (c) => c.notNull())
      .addColumn("source", "text", (c) => c.notNull())
      .execute();
  },
};
