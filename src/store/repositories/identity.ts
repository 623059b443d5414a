import type { Kysely } from "kysely";
import type {
  CredentialRepository,
  DeviceFilter,
  DeviceKeyRow,
  DeviceRecord,
  DeviceRepository,
  DeviceSecretRow,
  DeviceStatus,
  EnrollmentTokenRecord,
  EnrollmentTokenRepository,
  FirmwareInventoryRecord,
  FirmwareInventoryRepository,
  GroupSettingsRecord,
  GroupSettingsRepository,
  IdentityStore,
  IdentityUnitOfWork,
  OperatorTokenRecord,
  TokenRepository,
} from "../../identity/index.js";
import type { Database, DevicesTable, OperatorTokensTable } from "../schema.js";
import type { Store, StoreTx } from "../store.js";

function toDevice(row: DevicesTable): DeviceRecord {
  return {
    id: row.id,
    name: row.name,
    group: row.device_group,
    role: row.role,
    status: row.status as DeviceStatus,
    attributes: JSON.parse(row.attributes) as Record<string, string>,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastSeenAt: row.last_seen_at,
    lastSeenAddress: row.last_seen_address,
  };
}

function fromDevice(d: DeviceRecord): DevicesTable {
  return {
    id: d.id,
    name: d.name,
    device_group: d.group,
    role: d.role,
    status: d.status,
    attributes: JSON.stringify(d.attributes),
    created_at: d.createdAt,
    updated_at: d.updatedAt,
    last_seen_at: d.lastSeenAt,
    last_seen_address: d.lastSeenAddress,
  };
}

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export class KyselyDeviceRepository implements DeviceRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: "sqlite" | "postgres",
  ) {}

  async insert(device: DeviceRecord): Promise<void> {
    await this.db.insertInto("devices").values(fromDevice(device)).execute();
  }

  async get(id: string, options: { forUpdate?: boolean } = {}): Promise<DeviceRecord | undefined> {
    let q = this.db.selectFrom("devices").selectAll().where("id", "=", id);
    // Row lock in PostgreSQL; SQLite serialises writers anyway.
    if (options.forUpdate && this.dialect === "postgres") q = q.forUpdate();
    const row = await q.executeTakeFirst();
    return row ? toDevice(row) : undefined;
  }

  private filtered(filter: Omit<DeviceFilter, "after" | "limit">) {
    let q = this.db.selectFrom("devices");
    if (filter.status) q = q.where("status", "=", filter.status);
    if (filter.group) q = q.where("device_group", "=", filter.group);
    if (filter.role) q = q.where("role", "=", filter.role);
    if (filter.search) {
      const pattern = `%${escapeLike(filter.search)}%`;
      q = q.where((eb) => eb.or([eb("id", "like", pattern), eb("name", "like", pattern)]));
    }
    return q;
  }

  async list(filter: DeviceFilter): Promise<DeviceRecord[]> {
    let q = this.filtered(filter).selectAll().orderBy("id", "asc").limit(filter.limit ?? 100);
    if (filter.after) q = q.where("id", ">", filter.after);
    return (await q.execute()).map(toDevice);
  }

  async count(filter: Omit<DeviceFilter, "after" | "limit">): Promise<number> {
    const row = await this.filtered(filter).select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async tally(groups: number): Promise<{ byStatus: Record<string, number>; byGroup: { group: string | null; count: number }[] }> {
    const statuses = await this.db.selectFrom("devices").select(["status", (eb) => eb.fn.countAll().as("n")]).groupBy("status").execute();
    const byGroup = await this.db
      .selectFrom("devices")
      .select(["device_group", (eb) => eb.fn.countAll().as("n")])
      .groupBy("device_group")
      .orderBy("n", "desc")
      .orderBy("device_group", "asc")
      .limit(groups)
      .execute();
    return {
      byStatus: Object.fromEntries(statuses.map((r) => [r.status, Number(r.n)])),
      byGroup: byGroup.map((r) => ({ group: r.device_group, count: Number(r.n) })),
    };
  }

  async update(device: DeviceRecord): Promise<void> {
    const { id, ...rest } = fromDevice(device);
    await this.db.updateTable("devices").set(rest).where("id", "=", id).execute();
  }

  async recordSeen(entries: { id: string; at: string; address: string | null }[]): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      for (const e of entries)
        await trx.updateTable("devices").set({ last_seen_at: e.at, last_seen_address: e.address }).where("id", "=", e.id).execute();
    });
  }
}

function toToken(row: OperatorTokensTable): OperatorTokenRecord {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    secretHash: row.secret_hash,
    createdAt: row.created_at,
    createdBy: row.created_by,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}

export class KyselyTokenRepository implements TokenRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(t: OperatorTokenRecord): Promise<void> {
    await this.db
      .insertInto("operator_tokens")
      .values({
        id: t.id,
        name: t.name,
        role: t.role,
        secret_hash: t.secretHash,
        created_at: t.createdAt,
        created_by: t.createdBy,
        expires_at: t.expiresAt,
        revoked_at: t.revokedAt,
        last_used_at: t.lastUsedAt,
      })
      .execute();
  }

  async getById(id: string): Promise<OperatorTokenRecord | undefined> {
    const row = await this.db.selectFrom("operator_tokens").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? toToken(row) : undefined;
  }

  async getByName(name: string): Promise<OperatorTokenRecord | undefined> {
    const row = await this.db.selectFrom("operator_tokens").selectAll().where("name", "=", name).executeTakeFirst();
    return row ? toToken(row) : undefined;
  }

  async list(): Promise<OperatorTokenRecord[]> {
    return (await this.db.selectFrom("operator_tokens").selectAll().orderBy("created_at", "asc").execute()).map(toToken);
  }

  async update(t: OperatorTokenRecord): Promise<void> {
    await this.db
      .updateTable("operator_tokens")
      .set({ role: t.role, expires_at: t.expiresAt, revoked_at: t.revokedAt, last_used_at: t.lastUsedAt })
      .where("id", "=", t.id)
      .execute();
  }

  async touch(id: string, at: string): Promise<void> {
    await this.db.updateTable("operator_tokens").set({ last_used_at: at }).where("id", "=", id).execute();
  }
}

/** Device JWT credentials: registered public keys in `device_keys`, sealed HMAC secrets in `device_secrets`. */
export class KyselyCredentialRepository implements CredentialRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async listKeys(deviceId: string): Promise<DeviceKeyRow[]> {
    const rows = await this.db.selectFrom("device_keys").selectAll().where("device_id", "=", deviceId).orderBy("created_at").execute();
    return rows.map((r) => ({ deviceId: r.device_id, keyId: r.key_id, spkiPem: r.spki_pem, createdAt: r.created_at, createdBy: r.created_by }));
  }

  async insertKey(row: DeviceKeyRow): Promise<boolean> {
    const result = await this.db
      .insertInto("device_keys")
      .values({ device_id: row.deviceId, key_id: row.keyId, spki_pem: row.spkiPem, created_at: row.createdAt, created_by: row.createdBy })
      .onConflict((oc) => oc.columns(["device_id", "key_id"]).doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  async deleteKey(deviceId: string, keyId: string): Promise<boolean> {
    const result = await this.db.deleteFrom("device_keys").where("device_id", "=", deviceId).where("key_id", "=", keyId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async listSecrets(deviceId: string): Promise<DeviceSecretRow[]> {
    const rows = await this.db.selectFrom("device_secrets").selectAll().where("device_id", "=", deviceId).orderBy("created_at", "desc").execute();
    return rows.map((r) => ({ deviceId: r.device_id, secretId: r.secret_id, sealed: Buffer.from(r.sealed), createdAt: r.created_at, notAfter: r.not_after }));
  }

  async insertSecret(row: DeviceSecretRow): Promise<void> {
    await this.db
      .insertInto("device_secrets")
      .values({ device_id: row.deviceId, secret_id: row.secretId, sealed: row.sealed, created_at: row.createdAt, not_after: row.notAfter })
      .execute();
  }

  async setSecretNotAfter(deviceId: string, secretId: string, notAfter: string): Promise<void> {
    await this.db.updateTable("device_secrets").set({ not_after: notAfter }).where("device_id", "=", deviceId).where("secret_id", "=", secretId).execute();
  }

  async deleteSecret(deviceId: string, secretId: string): Promise<void> {
    await this.db.deleteFrom("device_secrets").where("device_id", "=", deviceId).where("secret_id", "=", secretId).execute();
  }
}

function toEnrollmentToken(row: Database["enrollment_tokens"]): EnrollmentTokenRecord {
  return {
    id: row.id,
    deviceId: row.device_id,
    secretHash: row.secret_hash,
    createdAt: row.created_at,
    createdBy: row.created_by,
    expiresAt: row.expires_at,
    usedAt: row.used_at,
  };
}

export class KyselyEnrollmentTokenRepository implements EnrollmentTokenRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(t: EnrollmentTokenRecord): Promise<void> {
    await this.db
      .insertInto("enrollment_tokens")
      .values({ id: t.id, device_id: t.deviceId, secret_hash: t.secretHash, created_at: t.createdAt, created_by: t.createdBy, expires_at: t.expiresAt, used_at: t.usedAt })
      .execute();
  }

  async get(id: string): Promise<EnrollmentTokenRecord | undefined> {
    const row = await this.db.selectFrom("enrollment_tokens").selectAll().where("id", "=", id).executeTakeFirst();
    return row ? toEnrollmentToken(row) : undefined;
  }

  async markUsed(id: string, at: string): Promise<boolean> {
    const result = await this.db.updateTable("enrollment_tokens").set({ used_at: at }).where("id", "=", id).where("used_at", "is", null).executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async list(deviceId?: string): Promise<EnrollmentTokenRecord[]> {
    let q = this.db.selectFrom("enrollment_tokens").selectAll();
    if (deviceId) q = q.where("device_id", "=", deviceId);
    return (await q.orderBy("created_at", "asc").execute()).map(toEnrollmentToken);
  }
}

function toGroupSettings(row: Database["group_settings"]): GroupSettingsRecord {
  return {
    group: row.device_group,
    allowedCidrs: row.allowed_cidrs === null ? null : (JSON.parse(row.allowed_cidrs) as string[]),
    silenceWindow: row.silence_window,
    minSecurityVersion: row.min_security_version === null ? null : Number(row.min_security_version),
    updatedAt: row.updated_at,
    updatedBy: row.updated_by,
  };
}

/** Group settings in `group_settings`, keyed by the group name devices carry. */
export class KyselyGroupSettingsRepository implements GroupSettingsRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: "sqlite" | "postgres",
  ) {}

  async get(group: string, options: { forUpdate?: boolean } = {}): Promise<GroupSettingsRecord | undefined> {
    let q = this.db.selectFrom("group_settings").selectAll().where("device_group", "=", group);
    if (options.forUpdate && this.dialect === "postgres") q = q.forUpdate();
    const row = await q.executeTakeFirst();
    return row ? toGroupSettings(row) : undefined;
  }

  async list(): Promise<GroupSettingsRecord[]> {
    return (await this.db.selectFrom("group_settings").selectAll().orderBy("device_group", "asc").execute()).map(toGroupSettings);
  }

  async upsert(s: GroupSettingsRecord): Promise<void> {
    const values = {
      allowed_cidrs: s.allowedCidrs === null ? null : JSON.stringify(s.allowedCidrs),
      silence_window: s.silenceWindow,
      min_security_version: s.minSecurityVersion,
      updated_at: s.updatedAt,
      updated_by: s.updatedBy,
    };
    await this.db
      .insertInto("group_settings")
      .values({ device_group: s.group, ...values })
      .onConflict((oc) => oc.column("device_group").doUpdateSet(values))
      .execute();
  }

  async delete(group: string): Promise<void> {
    await this.db.deleteFrom("group_settings").where("device_group", "=", group).execute();
  }

  async deviceCounts(): Promise<Map<string, number>> {
    const rows = await this.db
      .selectFrom("devices")
      .select(["device_group", (eb) => eb.fn.countAll().as("n")])
      .where("device_group", "is not", null)
      .groupBy("device_group")
      .execute();
    return new Map(rows.map((r) => [r.device_group!, Number(r.n)]));
  }
}

function toInventory(row: Database["firmware_inventory"]): FirmwareInventoryRecord {
  return {
    deviceId: row.device_id,
    version: row.version,
    securityVersion: Number(row.security_version),
    reportedAt: row.reported_at,
    source: row.source as FirmwareInventoryRecord["source"],
  };
}

/** The firmware each device last reported, in `firmware_inventory`. */
export class KyselyFirmwareInventoryRepository implements FirmwareInventoryRepository {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: "sqlite" | "postgres",
  ) {}

  async get(deviceId: string, options: { forUpdate?: boolean } = {}): Promise<FirmwareInventoryRecord | undefined> {
    let q = this.db.selectFrom("firmware_inventory").selectAll().where("device_id", "=", deviceId);
    if (options.forUpdate && this.dialect === "postgres") q = q.forUpdate();
    const row = await q.executeTakeFirst();
    return row ? toInventory(row) : undefined;
  }

  async list(options: { after?: string; limit: number }): Promise<FirmwareInventoryRecord[]> {
    let q = this.db.selectFrom("firmware_inventory").selectAll().orderBy("device_id", "asc").limit(options.limit);
    if (options.after) q = q.where("device_id", ">", options.after);
    return (await q.execute()).map(toInventory);
  }

  async versions(limit: number): Promise<{ version: string; securityVersion: number; count: number }[]> {
    const rows = await this.db
      .selectFrom("firmware_inventory")
      .select(["version", "security_version", (eb) => eb.fn.countAll().as("n")])
      .groupBy(["version", "security_version"])
      .orderBy("n", "desc")
      .orderBy("version", "asc")
      .limit(limit)
      .execute();
    return rows.map((r) => ({ version: r.version, securityVersion: Number(r.security_version), count: Number(r.n) }));
  }

  async upsert(r: FirmwareInventoryRecord): Promise<void> {
    const values = { version: r.version, security_version: r.securityVersion, reported_at: r.reportedAt, source: r.source };
    await this.db
      .insertInto("firmware_inventory")
      .values({ device_id: r.deviceId, ...values })
      .onConflict((oc) => oc.column("device_id").doUpdateSet(values))
      .execute();
  }
}

/** The identity unit of work inside a transaction of this store (other domains' ports reuse it). */
export function identityUnitOfWork(store: Store, tx: StoreTx): IdentityUnitOfWork {
  return {
    devices: new KyselyDeviceRepository(tx.db, store.dialect),
    tokens: new KyselyTokenRepository(tx.db),
    credentials: new KyselyCredentialRepository(tx.db),
    enrollmentTokens: new KyselyEnrollmentTokenRepository(tx.db),
    groups: new KyselyGroupSettingsRepository(tx.db, store.dialect),
    firmwareInventory: new KyselyFirmwareInventoryRepository(tx.db, store.dialect),
    events: tx.events,
    changes: tx.changes,
  };
}

/** The identity domain's storage port over this store. */
export function identityStore(store: Store): IdentityStore {
  return {
    transact: (fn) => store.transaction((tx) => fn(identityUnitOfWork(store, tx))),
    devices: new KyselyDeviceRepository(store.db, store.dialect),
    tokens: new KyselyTokenRepository(store.db),
    credentials: new KyselyCredentialRepository(store.db),
    enrollmentTokens: new KyselyEnrollmentTokenRepository(store.db),
    groups: new KyselyGroupSettingsRepository(store.db, store.dialect),
    firmwareInventory: new KyselyFirmwareInventoryRepository(store.db, store.dialect),
  };
}
