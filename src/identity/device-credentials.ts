/**
 * Device JWT credentials: `moat device key add` registers a public key for device-signed tokens
 * (ES256 / EdDSA); `moat device secret rotate` issues a new per-device HMAC secret for HS256 tokens
 * while the previous one keeps working for a grace period. Secrets are stored only sealed by the KEK
 * envelope and are shown once. Every change writes `credential.changed` to the feed so brokers re-check
 * live sessions.
 */
import { createPublicKey, randomBytes, type KeyObject } from "node:crypto";
import { publicKeyId, secretId } from "../crypto/index.js";
import { MoatError } from "../errors.js";
import type { DeviceKeyRow, IdentityStore, SecretSealer } from "./ports.js";

/** The largest public key file accepted (a PEM SPKI of any allowed type is far smaller). */
const MAX_KEY_BYTES = 16 * 1024;
/** Secret length: 256 bits, the HS256 output size (RFC 7518 §3.2 requires at least that). */
const SECRET_BYTES = 32;

function secretAad(deviceId: string, id: string): string {
  return `device-secret:${deviceId}:${id}`;
}

/** Parses a PEM or DER public key and checks it is one the JWT allow-list can use (P-256 or Ed25519). */
export function parseDevicePublicKey(input: string | Buffer): KeyObject {
  if (input.length > MAX_KEY_BYTES) throw new MoatError("BROKER_KEY_INVALID", `the public key is over ${MAX_KEY_BYTES} bytes`);
  const text = Buffer.isBuffer(input) ? input.toString("latin1") : input;
  // createPublicKey derives a public key from a private one; a private key must never be handed in.
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) throw new MoatError("BROKER_KEY_INVALID", "that is a private key; register the public key only");
  let key: KeyObject;
  try {
    key = text.includes("-----BEGIN")
      ? createPublicKey(text)
      : createPublicKey({ key: Buffer.isBuffer(input) ? input : Buffer.from(input, "latin1"), format: "der", type: "spki" });
  } catch (error) {
    throw new MoatError("BROKER_KEY_INVALID", "not a public key in PEM (SPKI) or DER form", { cause: error });
  }
  if (key.type !== "public") throw new MoatError("BROKER_KEY_INVALID", "that is a private key; register the public key only");
  const p256 = key.asymmetricKeyType === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1";
  if (!p256 && key.asymmetricKeyType !== "ed25519")
    throw new MoatError("BROKER_KEY_UNSUPPORTED", `a ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ""} key cannot sign device tokens; use EC P-256 (ES256) or Ed25519 (EdDSA)`);
  return key;
}

export interface RotatedSecret {
  deviceId: string;
  secretId: string;
  /** base64url of the new secret: shown once, never stored in clear. */
  secret: string;
  /** Until when the previous secret still verifies tokens, or null when there was none. */
  previousValidUntil: string | null;
}

/** A registered key as enforcement points read it. */
export interface DevicePublicKey {
  /** SPKI in PEM. */
  pem: string;
  source: "registered";
  id: string;
}

/** An opened HMAC secret as enforcement points read it; `notAfter` is null for the current one. */
export interface DeviceSecret {
  secret: Buffer;
  notAfter: string | null;
}

export class DeviceCredentialService {
  constructor(
    private readonly store: IdentityStore,
    private readonly sealer: SecretSealer,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private mustExist(status: string | undefined, deviceId: string): void {
    if (status === undefined) throw new MoatError("DEVICE_NOT_FOUND", `no device ${deviceId}`);
    if (status === "decommissioned") throw new MoatError("DEVICE_STATUS_TRANSITION", `device ${deviceId} is decommissioned; it gets no new credentials`);
  }

  /** Registers a public key for device-signed JWTs. */
  async addKey(deviceId: string, key: string | Buffer, actor: string): Promise<DeviceKeyRow> {
    const parsed = parseDevicePublicKey(key);
    const row: DeviceKeyRow = {
      deviceId,
      keyId: publicKeyId(parsed),
      spkiPem: parsed.export({ format: "pem", type: "spki" }).toString(),
      createdAt: this.now().toISOString(),
      createdBy: actor,
    };
    return this.store.transact(async (uow) => {
      this.mustExist((await uow.devices.get(deviceId))?.status, deviceId);
      if (!(await uow.credentials.insertKey(row))) throw new MoatError("BROKER_KEY_EXISTS", `device ${deviceId} already has key ${row.keyId}`);
      await uow.events.append({ type: "credential.key_added", severity: "medium", actor, subject: deviceId, data: { keyId: row.keyId, keyType: parsed.asymmetricKeyType } });
      await uow.changes.append({ kind: "credential.changed", subject: deviceId, data: { deviceId, keyId: row.keyId } });
      return row;
    });
  }

  /** Removes a registered key; live sessions that used it are closed by the brokers. */
  async removeKey(deviceId: string, keyId: string, actor: string): Promise<void> {
    await this.store.transact(async (uow) => {
      if (!(await uow.credentials.deleteKey(deviceId, keyId))) throw new MoatError("BROKER_KEY_NOT_FOUND", `device ${deviceId} has no key ${keyId}`);
      await uow.events.append({ type: "credential.key_removed", severity: "medium", actor, subject: deviceId, data: { keyId } });
      await uow.changes.append({ kind: "credential.changed", subject: deviceId, data: { deviceId, keyId } });
    });
  }

  listKeys(deviceId: string): Promise<DeviceKeyRow[]> {
    return this.store.credentials.listKeys(deviceId);
  }

  /**
   * A new HMAC secret becomes current; the previous current one keeps working for `graceSeconds`
   * (0 ends it now); any older one is deleted. Returns the new secret once.
   */
  async rotateSecret(deviceId: string, graceSeconds: number, actor: string): Promise<RotatedSecret> {
    if (!Number.isInteger(graceSeconds) || graceSeconds < 0) throw new MoatError("VALIDATION_FAILED", `grace ${graceSeconds} is not a whole number of seconds >= 0`);
    const secret = randomBytes(SECRET_BYTES);
    const id = secretId(secret);
    const sealed = await this.sealer.seal(secret, secretAad(deviceId, id));
    const now = this.now();
    return this.store.transact(async (uow) => {
      this.mustExist((await uow.devices.get(deviceId))?.status, deviceId);
      let previousValidUntil: string | null = null;
      for (const old of await uow.credentials.listSecrets(deviceId)) {
        if (old.notAfter === null) {
          previousValidUntil = new Date(now.getTime() + graceSeconds * 1000).toISOString();
          await uow.credentials.setSecretNotAfter(deviceId, old.secretId, previousValidUntil);
        } else {
          await uow.credentials.deleteSecret(deviceId, old.secretId);
        }
      }
      await uow.credentials.insertSecret({ deviceId, secretId: id, sealed, createdAt: now.toISOString(), notAfter: null });
      await uow.events.append({ type: "credential.secret_rotated", severity: "medium", actor, subject: deviceId, data: { secretId: id, previousValidUntil } });
      await uow.changes.append({ kind: "credential.changed", subject: deviceId, data: { deviceId, secretId: id } });
      return { deviceId, secretId: id, secret: secret.toString("base64url"), previousValidUntil };
    });
  }

  /** What credentials a device has, without their material: key ids and secret ids with their dates (dashboard, API). */
  async describe(deviceId: string): Promise<{ keys: { keyId: string; createdAt: string; createdBy: string }[]; secrets: { secretId: string; createdAt: string; notAfter: string | null }[] }> {
    const [keys, secrets] = await Promise.all([this.store.credentials.listKeys(deviceId), this.store.credentials.listSecrets(deviceId)]);
    return {
      keys: keys.map((k) => ({ keyId: k.keyId, createdAt: k.createdAt, createdBy: k.createdBy })),
      secrets: secrets.map((s) => ({ secretId: s.secretId, createdAt: s.createdAt, notAfter: s.notAfter })),
    };
  }

  /** Registered keys, for the broker's directory. */
  async publicKeys(deviceId: string): Promise<DevicePublicKey[]> {
    return (await this.store.credentials.listKeys(deviceId)).map((k) => ({ pem: k.spkiPem, source: "registered" as const, id: k.keyId }));
  }

  /**
   * The current secret and the previous one (also after its grace ended, so a refusal can say so;
   * the broker checks `notAfter`), opened in memory, current first.
   */
  async hmacSecrets(deviceId: string): Promise<DeviceSecret[]> {
    const rows = await this.store.credentials.listSecrets(deviceId);
    rows.sort((a, b) => (a.notAfter === null ? -1 : b.notAfter === null ? 1 : 0));
    const out: DeviceSecret[] = [];
    for (const row of rows) out.push({ secret: await this.sealer.open(row.sealed, secretAad(deviceId, row.secretId)), notAfter: row.notAfter });
    return out;
  }
}
