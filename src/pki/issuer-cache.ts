import { DeviceCertificateTemplate } from "./device-profile.js";
import type { CaRegistry, StoredCertificate } from "./ca-registry.js";
import { loadIssuer, type Issuer } from "./issuer.js";
import { pkiUrls } from "./naming.js";

/**
 * Unsealed CA keys, held in memory only while the process runs. The active issuing CA is loaded
 * once and its device template built once; `invalidate()` (on `ca.changed`) forces a reload.
 */
export class IssuerCache {
  private active: Promise<{ issuer: Issuer; template: DeviceCertificateTemplate }> | null = null;
  private readonly bySerial = new Map<string, Promise<Issuer | undefined>>();

  constructor(
    private readonly registry: CaRegistry,
    private readonly trustDomain: string,
    private readonly publicUrl: string,
  ) {}

  /** The active issuing CA and its pre-encoded device profile. */
  current(): Promise<{ issuer: Issuer; template: DeviceCertificateTemplate }> {
    if (!this.active) {
      this.active = (async () => {
        const record = await this.registry.active("issuing");
        const issuer = await this.load(record);
        return { issuer, template: new DeviceCertificateTemplate(issuer, this.trustDomain, pkiUrls(this.publicUrl)) };
      })();
      this.active.catch(() => {
        this.active = null;
      });
    }
    return this.active;
  }

  /** A CA (root or issuing) by serial, with its key; undefined when unknown or its key is offline. */
  byCaSerial(serialHex: string): Promise<Issuer | undefined> {
    let found = this.bySerial.get(serialHex);
    if (!found) {
      found = (async () => {
        const records = await this.registry.list();
        const record = records.find((r) => r.serialHex === serialHex && (r.role === "issuing" || r.role === "root"));
        return record && record.hasKey ? this.load(record) : undefined;
      })();
      found.catch(() => this.bySerial.delete(serialHex));
      this.bySerial.set(serialHex, found);
    }
    return found;
  }

  /** Every issuing CA whose key is held and that has not expired: OCSP answers for all of them. */
  async issuingCas(now = new Date()): Promise<Issuer[]> {
    const records = (await this.registry.list("issuing")).filter((r) => r.hasKey && new Date(r.notAfter) > now);
    const issuers = await Promise.all(records.map((r) => this.byCaSerial(r.serialHex)));
    return issuers.filter((issuer): issuer is Issuer => issuer !== undefined);
  }

  invalidate(): void {
    this.active = null;
    this.bySerial.clear();
  }

  private async load(record: StoredCertificate): Promise<Issuer> {
    return loadIssuer(await this.registry.caKeyInput(record));
  }
}
