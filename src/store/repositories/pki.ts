import type { Kysely } from "kysely";
import type { EnrollmentTokenService, IdentityUnitOfWork } from "../../identity/index.js";
import type {
  CertificateFilter,
  CertificateRecord,
  CertificateRepository,
  CrlRepository,
  CrlState,
  ManufacturerCaRecord,
  EnrollmentTokenPort,
  ManufacturerCaRepository,
  PkiDevicePort,
  PkiStore,
  RevocationReason,
  RevokedEntry,
} from "../../pki/index.js";
import type { CertificatesTable, Database } from "../schema.js";
import type { Store } from "../store.js";
import { identityUnitOfWork, KyselyDeviceRepository } from "./identity.js";

function toCertificate(row: CertificatesTable): CertificateRecord {
  return {
    serialHex: row.serial,
    deviceId: row.device_id,
    issuerSerialHex: row.issuer_serial,
    subject: row.subject,
    fingerprint: row.fingerprint,
    keyKind: row.key_kind,
    notBefore: row.not_before,
    notAfter: row.not_after,
    status: row.status as CertificateRecord["status"],
    revokedAt: row.revoked_at,
    revocationReason: row.revocation_reason as RevocationReason | null,
    supersededBy: row.superseded_by,
    revokeAfter: row.revoke_after,
    expiryNotifiedAt: row.expiry_notified_at,
    createdAt: row.created_at,
    certificateDer: Buffer.from(row.certificate_der),
  };
}

export class KyselyCertificateRepository implements CertificateRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insertIfAbsent(r: CertificateRecord): Promise<boolean> {
    const result = await this.db
      .insertInto("certificates")
      .values({
        serial: r.serialHex,
        device_id: r.deviceId,
        issuer_serial: r.issuerSerialHex,
        subject: r.subject,
        fingerprint: r.fingerprint,
        key_kind: r.keyKind,
        not_before: r.notBefore,
        not_after: r.notAfter,
        status: r.status,
        revoked_at: r.revokedAt,
        revocation_reason: r.revocationReason,
        superseded_by: r.supersededBy,
        revoke_after: r.revokeAfter,
        expiry_notified_at: r.expiryNotifiedAt,
        created_at: r.createdAt,
        certificate_der: r.certificateDer,
      })
      .onConflict((oc) => oc.column("serial").doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async get(serialHex: string): Promise<CertificateRecord | undefined> {
    const row = await this.db.selectFrom("certificates").selectAll().where("serial", "=", serialHex).executeTakeFirst();
    return row ? toCertificate(row) : undefined;
  }

  async list(filter: CertificateFilter): Promise<CertificateRecord[]> {
    let q = this.filtered(filter).selectAll();
    if (filter.after) q = q.where("serial", ">", filter.after);
    const rows = await q.orderBy("serial", "asc").limit(filter.limit ?? 1000).execute();
    return rows.map(toCertificate);
  }

  async count(filter: Omit<CertificateFilter, "after" | "limit">): Promise<number> {
    const row = await this.filtered(filter).select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  private filtered(filter: Omit<CertificateFilter, "after" | "limit">) {
    const now = filter.now ?? new Date().toISOString();
    let q = this.db.selectFrom("certificates");
    if (filter.deviceId) q = q.where("device_id", "=", filter.deviceId);
    if (filter.issuerSerialHex) q = q.where("issuer_serial", "=", filter.issuerSerialHex);
    switch (filter.status) {
      case "active":
        q = q.where("status", "=", "active").where("not_after", ">", now).where("superseded_by", "is", null);
        break;
      case "superseded":
        q = q.where("status", "=", "active").where("not_after", ">", now).where("superseded_by", "is not", null);
        break;
      case "revoked":
        q = q.where("status", "=", "revoked");
        break;
      case "expired":
        q = q.where("status", "=", "active").where("not_after", "<=", now);
        break;
    }
    if (filter.expiringBefore) q = q.where("status", "=", "active").where("not_after", ">", now).where("not_after", "<", filter.expiringBefore);
    return q;
  }

  async revoke(serialHex: string, at: string, reason: RevocationReason): Promise<boolean> {
    const result = await this.db
      .updateTable("certificates")
      .set({ status: "revoked", revoked_at: at, revocation_reason: reason, revoke_after: null })
      .where("serial", "=", serialHex)
      .where("status", "=", "active")
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async supersede(serialHex: string, by: string, revokeAfter: string): Promise<boolean> {
    // Conditional, so of two concurrent re-enrollments with one certificate only the first replaces it.
    const result = await this.db
      .updateTable("certificates")
      .set({ superseded_by: by, revoke_after: revokeAfter })
      .where("serial", "=", serialHex)
      .where("superseded_by", "is", null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async activeForDevice(deviceId: string): Promise<CertificateRecord[]> {
    const rows = await this.db.selectFrom("certificates").selectAll().where("device_id", "=", deviceId).where("status", "=", "active").orderBy("created_at", "asc").execute();
    return rows.map(toCertificate);
  }

  async dueForRevocation(now: string): Promise<CertificateRecord[]> {
    const rows = await this.db.selectFrom("certificates").selectAll().where("status", "=", "active").where("revoke_after", "is not", null).where("revoke_after", "<=", now).limit(1000).execute();
    return rows.map(toCertificate);
  }

  async expiringUnnotified(now: string, before: string): Promise<CertificateRecord[]> {
    const rows = await this.db
      .selectFrom("certificates")
      .selectAll()
      .where("status", "=", "active")
      .where("superseded_by", "is", null)
      .where("not_after", ">", now)
      .where("not_after", "<", before)
      .where("expiry_notified_at", "is", null)
      .limit(1000)
      .execute();
    return rows.map(toCertificate);
  }

  async markExpiryNotified(serialHex: string, at: string): Promise<void> {
    await this.db.updateTable("certificates").set({ expiry_notified_at: at }).where("serial", "=", serialHex).execute();
  }

  async revokedFor(issuerSerialHex: string, now: string): Promise<RevokedEntry[]> {
    const rows = await this.db
      .selectFrom("certificates")
      .select(["serial", "revoked_at", "revocation_reason"])
      .where("issuer_serial", "=", issuerSerialHex)
      .where("status", "=", "revoked")
      .where("not_after", ">", now)
      .orderBy("serial", "asc")
      .execute();
    return rows.map((r) => ({ serialHex: r.serial, revokedAt: r.revoked_at ?? now, reason: (r.revocation_reason ?? "unspecified") as RevocationReason }));
  }

  async statuses(issuerSerialHex: string, serialsHex: readonly string[]) {
    if (serialsHex.length === 0) return [];
    const rows = await this.db
      .selectFrom("certificates")
      .select(["serial", "status", "revoked_at", "revocation_reason"])
      .where("issuer_serial", "=", issuerSerialHex)
      .where("serial", "in", [...serialsHex])
      .execute();
    return rows.map((r) => ({
      serialHex: r.serial,
      status: r.status as CertificateRecord["status"],
      revokedAt: r.revoked_at,
      revocationReason: r.revocation_reason as RevocationReason | null,
    }));
  }
}

export class KyselyCrlRepository implements CrlRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async get(caSerialHex: string): Promise<CrlState | undefined> {
    const row = await this.db.selectFrom("crls").selectAll().where("ca_serial", "=", caSerialHex).executeTakeFirst();
    return row
      ? { caSerialHex: row.ca_serial, number: Number(row.crl_number), thisUpdate: row.this_update, nextUpdate: row.next_update, der: Buffer.from(row.crl_der) }
      : undefined;
  }

  async save(state: CrlState): Promise<void> {
    const values = { crl_number: state.number, this_update: state.thisUpdate, next_update: state.nextUpdate, crl_der: state.der };
    await this.db
      .insertInto("crls")
      .values({ ca_serial: state.caSerialHex, ...values })
      .onConflict((oc) => oc.column("ca_serial").doUpdateSet(values))
      .execute();
  }
}

export class KyselyManufacturerCaRepository implements ManufacturerCaRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(r: ManufacturerCaRecord): Promise<void> {
    await this.db
      .insertInto("manufacturer_cas")
      .values({ fingerprint: r.fingerprint, subject: r.subject, certificate_pem: r.certificatePem, not_after: r.notAfter, created_at: r.createdAt })
      .onConflict((oc) => oc.column("fingerprint").doNothing())
      .execute();
  }

  async list(): Promise<ManufacturerCaRecord[]> {
    const rows = await this.db.selectFrom("manufacturer_cas").selectAll().orderBy("created_at", "asc").execute();
    return rows.map((r) => ({ fingerprint: r.fingerprint, subject: r.subject, certificatePem: r.certificate_pem, notAfter: r.not_after, createdAt: r.created_at }));
  }

  async remove(fingerprint: string): Promise<boolean> {
    const result = await this.db.deleteFrom("manufacturer_cas").where("fingerprint", "=", fingerprint).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }
}

/** Activates a pending device inside the caller's transaction through the identity domain's own logic. */
export type ActivateDevice = (uow: IdentityUnitOfWork, deviceId: string, actor: string) => Promise<void>;

/** The identity domain's enrollment tokens, redeemed inside the PKI's transaction. */
export type EnrollmentTokens = Pick<EnrollmentTokenService, "checkForm" | "redeemIn">;

function devicePort(identity: IdentityUnitOfWork, activate: ActivateDevice): PkiDevicePort {
  return {
    get: async (id) => {
      const device = await identity.devices.get(id, { forUpdate: true });
      return device ? { id: device.id, status: device.status, group: device.group } : undefined;
    },
    activate: (id, actor) => activate(identity, id, actor),
  };
}

function enrollmentTokenPort(identity: IdentityUnitOfWork, tokens: EnrollmentTokens): EnrollmentTokenPort {
  return { checkForm: (token) => tokens.checkForm(token), redeem: (token) => tokens.redeemIn(identity, token) };
}

/** The PKI's storage port over this store; device and token ports reach the identity domain in the same transaction. */
export function pkiStore(store: Store, activate: ActivateDevice, tokens: EnrollmentTokens): PkiStore {
  const devices = new KyselyDeviceRepository(store.db, store.dialect);
  return {
    transact: (fn) =>
      store.transaction((tx) => {
        const identity = identityUnitOfWork(store, tx);
        return fn({
          certificates: new KyselyCertificateRepository(tx.db),
          crls: new KyselyCrlRepository(tx.db),
          enrollmentTokens: enrollmentTokenPort(identity, tokens),
          manufacturers: new KyselyManufacturerCaRepository(tx.db),
          devices: devicePort(identity, activate),
          events: tx.events,
          changes: tx.changes,
        });
      }),
    certificates: new KyselyCertificateRepository(store.db),
    crls: new KyselyCrlRepository(store.db),
    enrollmentTokens: { checkForm: (token) => tokens.checkForm(token) },
    manufacturers: new KyselyManufacturerCaRepository(store.db),
    devices: {
      get: async (id) => {
        const device = await devices.get(id);
        return device ? { id: device.id, status: device.status, group: device.group } : undefined;
      },
    },
  };
}
