import type { Kysely } from "kysely";
import type { CaKeyRepository, CaRegistryStore, CaRole, KeyType, StoredCertificate } from "../../pki/index.js";
import type { CaCertificatesTable, Database } from "../schema.js";
import type { Store } from "../store.js";

function toRecord(row: Omit<CaCertificatesTable, "sealed_key"> & { has_key: number }): StoredCertificate {
  return {
    serialHex: row.serial,
    role: row.role as CaRole,
    keyType: row.key_type as KeyType,
    subject: row.subject,
    certificatePem: row.certificate_pem,
    notAfter: row.not_after,
    active: row.active === 1,
    createdAt: row.created_at,
    hasKey: Number(row.has_key) === 1,
    keyLocation: row.key_location,
  };
}

export class KyselyCaKeyRepository implements CaKeyRepository {
  constructor(private readonly db: Kysely<Database>) {}

  private select() {
    return this.db
      .selectFrom("ca_certificates")
      .select(["serial", "role", "key_type", "subject", "certificate_pem", "not_after", "active", "created_at", "key_location"])
      // A key is held when it is sealed here or lives in a PKCS#11 token.
      .select((eb) =>
        eb
          .case()
          .when(eb.or([eb("sealed_key", "is not", null), eb("key_location", "is not", null)]))
          .then(1)
          .else(0)
          .end()
          .as("has_key"),
      );
  }

  async insert(r: StoredCertificate, sealedKey: Buffer | null): Promise<void> {
    await this.db
      .insertInto("ca_certificates")
      .values({
        serial: r.serialHex,
        role: r.role,
        key_type: r.keyType,
        subject: r.subject,
        certificate_pem: r.certificatePem,
        sealed_key: sealedKey,
        key_location: r.keyLocation ?? null,
        not_after: r.notAfter,
        active: r.active ? 1 : 0,
        created_at: r.createdAt,
      })
      .execute();
  }

  async list(role?: CaRole): Promise<StoredCertificate[]> {
    let q = this.select().orderBy("created_at", "desc");
    if (role) q = q.where("role", "=", role);
    return (await q.execute()).map(toRecord);
  }

  async get(serialHex: string): Promise<StoredCertificate | undefined> {
    const row = await this.select().where("serial", "=", serialHex).executeTakeFirst();
    return row ? toRecord(row) : undefined;
  }

  async sealedKey(serialHex: string): Promise<Buffer | null> {
    const row = await this.db.selectFrom("ca_certificates").select("sealed_key").where("serial", "=", serialHex).executeTakeFirst();
    return row?.sealed_key ? Buffer.from(row.sealed_key) : null;
  }

  async setActive(serialHex: string, active: boolean): Promise<void> {
    await this.db.updateTable("ca_certificates").set({ active: active ? 1 : 0 }).where("serial", "=", serialHex).execute();
  }

  async setSealedKey(serialHex: string, sealedKey: Buffer | null): Promise<void> {
    await this.db.updateTable("ca_certificates").set({ sealed_key: sealedKey }).where("serial", "=", serialHex).execute();
  }
}

export function caRegistryStore(store: Store): CaRegistryStore {
  return {
    transact: (fn) => store.transaction((tx) => fn({ cas: new KyselyCaKeyRepository(tx.db), events: tx.events, changes: tx.changes })),
    cas: new KyselyCaKeyRepository(store.db),
  };
}
