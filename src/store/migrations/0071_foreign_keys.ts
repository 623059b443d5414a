import type { Kysely } from "kysely";
import type { Dialect } from "../dialect.js";
import { addForeignKeys, type ForeignKey } from "./rebuild.js";
import type { MoatMigration } from "./types.js";

function fk(table: string, column: string, references: string, onDelete: ForeignKey["onDelete"]): ForeignKey {
  const [refTable, refColumn] = references.split(".") as [string, string];
  return { name: `${table}_${column}_fk`, column, references: { table: refTable, column: refColumn }, onDelete };
}

/**
 * Foreign keys between rows that name each other. ON DELETE per relation:
 * - restrict: a certificate is the record of an issuance and of its revocation (the CRL and OCSP answer
 *   from it), so neither its device, its issuing CA nor the certificate that superseded it may vanish
 *   under it; role assignments are grants that the policy service deletes itself so it can audit each
 *   one (`role.deleted` lists them), so a role cannot be deleted while rows still grant it; a firmware
 *   signing key's certificate names its root.
 * - cascade: device credentials (public keys, HMAC secrets) and enrollment tokens exist only to let that
 *   device in, and must never outlive it; a CRL is derived from its CA and means nothing without it.
 * - set null: a scan finding is evidence about an address; it stays when the device it was matched to goes.
 * Not constrained: registry roles of devices and operator tokens (names kept on decommissioned devices and
 * revoked tokens after the role is deleted), role assignment targets (a device, group or token by kind),
 * and OTA campaign devices (held in the campaign's JSON, not in rows).
 */
export const foreignKeys: MoatMigration = {
  async up(db: Kysely<any>, dialect: Dialect) {
    await addForeignKeys(db, dialect, "certificates", [
      fk("certificates", "device_id", "devices.id", "restrict"),
      fk("certificates", "issuer_serial", "ca_certificates.serial", "restrict"),
      fk("certificates", "superseded_by", "certificates.serial", "restrict"),
    ]);
    await addForeignKeys(db, dialect, "crls", [fk("crls", "ca_serial", "ca_certificates.serial", "cascade")]);
    await addForeignKeys(db, dialect, "enrollment_tokens", [fk("enrollment_tokens", "device_id", "devices.id", "cascade")]);
    await addForeignKeys(db, dialect, "device_keys", [fk("device_keys", "device_id", "devices.id", "cascade")]);
    await addForeignKeys(db, dialect, "device_secrets", [fk("device_secrets", "device_id", "devices.id", "cascade")]);
    await addForeignKeys(db, dialect, "role_assignments", [fk("role_assignments", "role", "roles.name", "restrict")]);
    await addForeignKeys(db, dialect, "firmware_keys", [fk("firmware_keys", "issuer", "firmware_keys.name", "restrict")]);
    await addForeignKeys(db, dialect, "scan_findings", [fk("scan_findings", "device_id", "devices.id", "set null")]);
    // Kysely's Migrator, which earlier versions used, kept its lock in this table; the runner locks differently now.
    await db.schema.dropTable("kysely_migration_lock").ifExists().execute();
  },
};
