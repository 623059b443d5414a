/**
 * Storage ports for device JWT credentials: registered public keys and envelope-sealed HMAC secrets.
 * `src/store/repositories/broker.ts` implements them; the secrets are sealed before they reach it.
 */
import type { ChangeWriter, Transactional } from "../ports.js";
import type { BrokerEvent } from "./ports.js";

export interface DeviceKeyRow {
  deviceId: string;
  /** `key:<first 16 hex of SHA-256(SPKI DER)>`. */
  keyId: string;
  spkiPem: string;
  createdAt: string;
  createdBy: string;
}

export interface DeviceSecretRow {
  deviceId: string;
  /** `secret:<first 16 hex of SHA-256(secret)>`; never the secret. */
  secretId: string;
  /** The secret sealed by the envelope (AES-256-GCM, AAD `device-secret:<device>:<secret id>`). */
  sealed: Buffer;
  createdAt: string;
  /** Null for the current secret; the end of the grace period for the previous one. */
  notAfter: string | null;
}

export interface CredentialRepository {
  listKeys(deviceId: string): Promise<DeviceKeyRow[]>;
  /** False when the device already has this key (nothing written). */
  insertKey(row: DeviceKeyRow): Promise<boolean>;
  deleteKey(deviceId: string, keyId: string): Promise<boolean>;
  listSecrets(deviceId: string): Promise<DeviceSecretRow[]>;
  insertSecret(row: DeviceSecretRow): Promise<void>;
  setSecretNotAfter(deviceId: string, secretId: string, notAfter: string): Promise<void>;
  deleteSecret(deviceId: string, secretId: string): Promise<void>;
}

export interface CredentialUnitOfWork {
  credentials: CredentialRepository;
  /** Status of the device, or undefined when there is none. */
  deviceStatus(deviceId: string): Promise<string | undefined>;
  events: { append(event: BrokerEvent): Promise<void> };
  changes: ChangeWriter;
}

export interface CredentialStore {
  transact: Transactional<CredentialUnitOfWork>;
  credentials: CredentialRepository;
}

/** Seals and opens secrets (the keys domain's Envelope satisfies it). */
export interface SecretSealer {
  seal(plaintext: Buffer, aad: string): Promise<Buffer>;
  open(blob: Buffer, aad: string): Promise<Buffer>;
}
