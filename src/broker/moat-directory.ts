/**
 * The broker's device directory over Moat's own services: the identity registry (status, group, role,
 * attributes), the PKI certificate store (current certificates and their public keys) and the device
 * credential store (registered JWT keys and HMAC secrets). Narrow structural ports keep the broker
 * independent of how those services are built.
 */
import { X509Certificate } from "node:crypto";
import { isMoatError } from "../errors.js";
import { normalizeSerial } from "./cert-auth.js";
import type { DeviceDirectory, DeviceHmacSecret, DeviceRecord, RegisteredPublicKey } from "./ports.js";

/** The identity registry, as the broker reads it. */
export interface DeviceRegistryPort {
  /** Throws `DEVICE_NOT_FOUND` (or returns undefined) for an unknown device. */
  get(id: string): Promise<{ id: string; status: string; group: string | null; role: string; attributes: Record<string, string> } | undefined>;
}

/** The PKI certificate store, as the broker reads it. */
export interface DeviceCertificatesPort {
  /** `active`: current certificates, valid now and not revoked; `superseded`: replaced ones not yet revoked. */
  list(filter: { deviceId: string; status: "active" | "superseded" }): Promise<{ serialHex: string; certificateDer: Buffer | Uint8Array; notAfter: string; revokeAfter: string | null }[]>;
}

/** Registered JWT credentials of a device. */
export interface DeviceCredentialsPort {
  publicKeys(deviceId: string): Promise<RegisteredPublicKey[]>;
  hmacSecrets(deviceId: string): Promise<DeviceHmacSecret[]>;
}

export class MoatDeviceDirectory implements DeviceDirectory {
  constructor(
    private readonly registry: DeviceRegistryPort,
    private readonly certificates: DeviceCertificatesPort,
    private readonly credentials: DeviceCredentialsPort | null,
    /** The identity domain's device-id rule. */
    readonly isDeviceId: (id: string) => boolean,
  ) {}

  async get(deviceId: string): Promise<DeviceRecord | null> {
    let device: Awaited<ReturnType<DeviceRegistryPort["get"]>>;
    try {
      device = await this.registry.get(deviceId);
    } catch (error) {
      if (isMoatError(error, "DEVICE_NOT_FOUND") || isMoatError(error, "DEVICE_ID_INVALID")) return null;
      throw error;
    }
    if (!device) return null;
    const [current, superseded, keys, secrets] = await Promise.all([
      this.certificates.list({ deviceId, status: "active" }),
      this.certificates.list({ deviceId, status: "superseded" }),
      this.credentials?.publicKeys(deviceId) ?? [],
      this.credentials?.hmacSecrets(deviceId) ?? [],
    ]);
    // A replaced certificate stays valid until its grace period ends, here as for OCSP and the CRL
    // (docs/pki.md); after that it is refused even before the scheduler has revoked it.
    const now = Date.now();
    const inGrace = superseded.filter((c) => c.revokeAfter !== null && Date.parse(c.revokeAfter) > now && Date.parse(c.notAfter) > now);
    const certs = [...current, ...inGrace];
    const publicKeys: RegisteredPublicKey[] = [...keys];
    for (const cert of certs) {
      try {
        const parsed = new X509Certificate(cert.certificateDer);
        publicKeys.push({ pem: parsed.publicKey.export({ format: "pem", type: "spki" }).toString(), source: "certificate", id: `cert:${normalizeSerial(cert.serialHex)}` });
      } catch {
        // A certificate that does not parse contributes no key.
      }
    }
    return {
      id: device.id,
      status: device.status,
      group: device.group,
      role: device.role,
      attributes: device.attributes,
      publicKeys,
      hmacSecrets: secrets,
      certSerials: certs.map((c) => normalizeSerial(c.serialHex)),
    };
  }
}
