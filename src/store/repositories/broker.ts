import type { Kysely } from "kysely";
import type { CredentialRepository, CredentialStore, DeviceKeyRow, DeviceSecretRow } from "../../broker/index.js";
import type { Database } from "../schema.js";
import type { Store } from "../store.js";

/** Device JWT credentials (broker domain) in `device_keys` and `device_secrets`. */
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

/** The broker's credential store over Moat's store (transactions with events and change-feed rows). */
export function brokerCredentialStore(store: Store): CredentialStore {
  return {
    transact: (fn) =>
      store.transaction((tx) =>
        fn({
          credentials: new KyselyCredentialRepository(tx.db),
          deviceStatus: async (id) => (await tx.db.selectFrom("devices").select("status").where("id", "=", id).executeTakeFirst())?.status,
          events: tx.events,
          changes: tx.changes,
        }),
      ),
    credentials: new KyselyCredentialRepository(store.db),
  };
}
