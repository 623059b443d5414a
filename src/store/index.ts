export { Store, type StoreTx, type StoreOptions } from "./store.js";
export { openDatabase, SQLITE_FILE, type DatabaseTarget } from "./database.js";
export { blobType, autoId, nowIso, isUniqueViolation, isRetryableWriteConflict, type Dialect } from "./dialect.js";
export { AuditRepository } from "./repositories/audit.js";
export { MetaRepository } from "./repositories/meta.js";
export type { Database } from "./schema.js";
export { identityStore, KyselyDeviceRepository, KyselyTokenRepository } from "./repositories/identity.js";
export { caRegistryStore, KyselyCaKeyRepository } from "./repositories/ca-registry.js";
export { KyselySealedBlobStore } from "./repositories/sealed-blobs.js";
