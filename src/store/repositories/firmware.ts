import type { Kysely } from "kysely";
import type {
  Campaign,
  CampaignRepository,
  FirmwareKeyPurpose,
  FirmwareKeyRecord,
  FirmwareKeyRepository,
  FirmwareStore,
  RevocationListRepository,
} from "../../firmware/index.js";
import type { Dialect } from "../dialect.js";
import type { Database, FirmwareKeysTable } from "../schema.js";
import type { Store } from "../store.js";

function toKey(row: FirmwareKeysTable): FirmwareKeyRecord {
  return {
    name: row.name,
    purpose: row.purpose as FirmwareKeyPurpose,
    alg: row.alg as FirmwareKeyRecord["alg"],
    keyId: row.key_id,
    publicKey: Buffer.from(row.public_key),
    sealedPrivateKey: row.sealed_private_key ? Buffer.from(row.sealed_private_key) : null,
    location: row.location,
    certificate: row.certificate,
    issuer: row.issuer,
    notBefore: row.not_before,
    notAfter: row.not_after,
    revokedAt: row.revoked_at,
    revocationReason: row.revocation_reason,
    createdAt: row.created_at,
  };
}

function fromKey(r: FirmwareKeyRecord): FirmwareKeysTable {
  return {
    name: r.name,
    purpose: r.purpose,
    alg: r.alg,
    key_id: r.keyId,
    public_key: r.publicKey,
    sealed_private_key: r.sealedPrivateKey,
    location: r.location,
    certificate: r.certificate,
    issuer: r.issuer,
    not_before: r.notBefore,
    not_after: r.notAfter,
    revoked_at: r.revokedAt,
    revocation_reason: r.revocationReason,
    created_at: r.createdAt,
  };
}

export class KyselyFirmwareKeyRepository implements FirmwareKeyRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(record: FirmwareKeyRecord): Promise<void> {
    await this.db.insertInto("firmware_keys").values(fromKey(record)).execute();
  }

  async get(name: string): Promise<FirmwareKeyRecord | undefined> {
    const row = await this.db.selectFrom("firmware_keys").selectAll().where("name", "=", name).executeTakeFirst();
    return row ? toKey(row) : undefined;
  }

  async list(purpose?: FirmwareKeyPurpose): Promise<FirmwareKeyRecord[]> {
    let q = this.db.selectFrom("firmware_keys").selectAll();
    if (purpose) q = q.where("purpose", "=", purpose);
    return (await q.orderBy("created_at", "asc").orderBy("name", "asc").execute()).map(toKey);
  }

  async update(record: FirmwareKeyRecord): Promise<void> {
    const { name: _name, ...rest } = fromKey(record);
    await this.db.updateTable("firmware_keys").set(rest).where("name", "=", record.name).execute();
  }
}

export class KyselyRevocationListRepository implements RevocationListRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(version: number, document: string, createdAt: string): Promise<void> {
    await this.db.insertInto("firmware_revocation_lists").values({ version, document, created_at: createdAt }).execute();
  }

  async latest(): Promise<{ version: number; document: string } | undefined> {
    const row = await this.db.selectFrom("firmware_revocation_lists").select(["version", "document"]).orderBy("version", "desc").limit(1).executeTakeFirst();
    return row ? { version: Number(row.version), document: row.document } : undefined;
  }
}

export class KyselyCampaignRepository implements CampaignRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
  ) {}

  async insert(campaign: Campaign): Promise<void> {
    await this.db
      .insertInto("ota_campaigns")
      .values({ id: campaign.id, device_group: campaign.group, status: campaign.status, data: JSON.stringify(campaign), created_at: campaign.createdAt, updated_at: campaign.updatedAt })
      .execute();
  }

  async get(id: string, options: { forUpdate?: boolean } = {}): Promise<Campaign | undefined> {
    let q = this.db.selectFrom("ota_campaigns").select("data").where("id", "=", id);
    // Row lock in PostgreSQL so concurrent device reports apply one after another; SQLite serialises writers.
    if (options.forUpdate && this.dialect === "postgres") q = q.forUpdate();
    const row = await q.executeTakeFirst();
    return row ? (JSON.parse(row.data) as Campaign) : undefined;
  }

  async update(campaign: Campaign): Promise<void> {
    await this.db
      .updateTable("ota_campaigns")
      .set({ status: campaign.status, data: JSON.stringify(campaign), updated_at: campaign.updatedAt })
      .where("id", "=", campaign.id)
      .execute();
  }

  async list(filter: { status?: string; limit?: number } = {}): Promise<Campaign[]> {
    let q = this.db.selectFrom("ota_campaigns").select("data");
    if (filter.status) q = q.where("status", "=", filter.status);
    const rows = await q.orderBy("created_at", "desc").limit(filter.limit ?? 100).execute();
    return rows.map((row) => JSON.parse(row.data) as Campaign);
  }
}

/** The firmware domain's storage port over the store. */
export function firmwareStore(store: Store): FirmwareStore {
  return {
    transact: (fn) =>
      store.transaction((tx) =>
        fn({
          keys: new KyselyFirmwareKeyRepository(tx.db),
          revocations: new KyselyRevocationListRepository(tx.db),
          campaigns: new KyselyCampaignRepository(tx.db, store.dialect),
          events: tx.events,
          changes: tx.changes,
        }),
      ),
    keys: new KyselyFirmwareKeyRepository(store.db),
    revocations: new KyselyRevocationListRepository(store.db),
    campaigns: new KyselyCampaignRepository(store.db, store.dialect),
  };
}
