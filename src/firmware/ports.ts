import type { EventAppender } from "../audit/index.js";
import type { ChangeWriter, Transactional } from "../ports.js";
import type { Campaign, OtaMessage } from "./campaign.js";
import type { SignatureAlgorithm } from "./signature-algorithms.js";

/** What a stored firmware key is for. TUF role keys live beside the firmware root and signing keys. */
export type FirmwareKeyPurpose = "root" | "signing" | "tuf-root" | "tuf-targets" | "tuf-snapshot" | "tuf-timestamp";

export interface FirmwareKeyRecord {
  name: string;
  purpose: FirmwareKeyPurpose;
  /** Firmware algorithm, or `ed25519` for TUF keys. */
  alg: SignatureAlgorithm;
  keyId: string;
  publicKey: Buffer;
  /** The private key sealed with the envelope (aad `firmware-key:<name>`); null when kept offline or in the token. */
  sealedPrivateKey: Buffer | null;
  /** `pkcs11:<token>/<label>` when the private key was generated in the PKCS#11 token; null otherwise. */
  location: string | null;
  /** For signing keys: the root-signed key certificate (JSON). */
  certificate: string | null;
  /** For signing keys: the root key's name. */
  issuer: string | null;
  notBefore: string | null;
  notAfter: string | null;
  revokedAt: string | null;
  revocationReason: string | null;
  createdAt: string;
}

export interface FirmwareKeyRepository {
  insert(record: FirmwareKeyRecord): Promise<void>;
  get(name: string): Promise<FirmwareKeyRecord | undefined>;
  list(purpose?: FirmwareKeyPurpose): Promise<FirmwareKeyRecord[]>;
  update(record: FirmwareKeyRecord): Promise<void>;
}

/** Root-signed revocation lists, newest version wins. */
export interface RevocationListRepository {
  insert(version: number, document: string, createdAt: string): Promise<void>;
  latest(): Promise<{ version: number; document: string } | undefined>;
}

export interface CampaignRepository {
  insert(campaign: Campaign): Promise<void>;
  get(id: string, options?: { forUpdate?: boolean }): Promise<Campaign | undefined>;
  update(campaign: Campaign): Promise<void>;
  list(filter?: { status?: string; limit?: number }): Promise<Campaign[]>;
}

export interface FirmwareUnitOfWork {
  keys: FirmwareKeyRepository;
  revocations: RevocationListRepository;
  campaigns: CampaignRepository;
  events: EventAppender;
  changes: ChangeWriter;
}

/** Storage as the firmware domain needs it: transactional writes and plain reads. */
export interface FirmwareStore {
  transact: Transactional<FirmwareUnitOfWork>;
  keys: FirmwareKeyRepository;
  revocations: RevocationListRepository;
  campaigns: CampaignRepository;
}

/** Envelope encryption as firmware uses it (src/keys `Envelope` satisfies it). */
export interface SecretSealer {
  seal(plaintext: Uint8Array, aad: string): Promise<Buffer>;
  open(blob: Uint8Array, aad: string): Promise<Buffer>;
}

/**
 * Signing keys generated inside the PKCS#11 token (keys.provider=pkcs11). Public keys use the firmware
 * encodings (Ed25519 raw 32 bytes, P-256 uncompressed point); P-256 signatures are r || s over SHA-256.
 */
export interface TokenSigningKeys {
  generate(purpose: string, alg: "ed25519" | "ecdsa-p256"): { publicKey: Buffer; location: string };
  signer(location: string): { publicKey: Buffer; sign(message: Buffer): Buffer };
}

/** The devices of a group with their registry status (the identity registry satisfies it). */
export interface GroupDirectory {
  devicesInGroup(group: string): Promise<readonly { id: string; status: string }[]>;
}

/**
 * Tells a device about an update or an abort on `devices/{id}/ota`. The MQTT broker implements it;
 * until it is wired, campaigns still run and `pendingNotifications` lists what is owed.
 */
export interface OtaNotifier {
  notify(deviceId: string, message: OtaMessage): Promise<void>;
}
