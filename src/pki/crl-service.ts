import { MoatError } from "../errors.js";
import type { CaRegistry } from "./ca-registry.js";
import { generateCrl } from "./crl.js";
import type { IssuerCache } from "./issuer-cache.js";
import type { CrlState, PkiStore } from "./ports.js";

export interface CrlServiceOptions {
  store: PkiStore;
  issuers: IssuerCache;
  registry: CaRegistry;
  /** nextUpdate - thisUpdate (RFC 5280 §5.1.2.5). */
  validityMs: number;
}

/**
 * CRLs of Moat's CAs (RFC 5280 §5): one per issuing CA listing its revoked device certificates, and
 * the root's listing revoked issuing CAs. A CRL is regenerated on every revocation and when a
 * quarter of its validity is left; its CRL Number only ever grows (§5.2.3).
 */
export class CrlService {
  private readonly cache = new Map<string, CrlState>();

  constructor(private readonly options: CrlServiceOptions) {}

  /** The current CRL (DER) of a CA (`root`, a CA serial, or the active issuing CA when omitted). */
  async current(ca?: string, now = new Date()): Promise<CrlState> {
    const caSerial = await this.resolve(ca);
    const cached = this.cache.get(caSerial) ?? (await this.options.store.crls.get(caSerial));
    if (cached && !this.due(cached, now)) {
      this.cache.set(caSerial, cached);
      return cached;
    }
    const issuer = await this.options.issuers.byCaSerial(caSerial);
    // An offline root cannot sign: serve the last CRL it signed (made long-lived by `moat ca offline-root`).
    if (!issuer) {
      if (cached) return cached;
      throw new MoatError("PKI_ROOT_KEY_OFFLINE", `no CRL for CA ${caSerial} and its key is not held here`);
    }
    return this.refresh(caSerial, now);
  }

  /** Signs a new CRL for the CA now (after a revocation); returns what was stored. */
  async refresh(caSerial: string, now = new Date(), validityMs = this.options.validityMs): Promise<CrlState> {
    const issuer = await this.options.issuers.byCaSerial(caSerial);
    if (!issuer) throw new MoatError("PKI_ROOT_KEY_OFFLINE", `the key of CA ${caSerial} is not held here; its CRL cannot be re-signed`);
    const isRoot = issuer.certificate.subjectDer.equals(issuer.certificate.issuerDer);
    const state = await this.options.store.transact(async (uow) => {
      const previous = await uow.crls.get(caSerial);
      const revoked = isRoot ? [] : await uow.certificates.revokedFor(caSerial, now.toISOString());
      const number = (previous?.number ?? 0) + 1;
      const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
      const nextUpdate = new Date(thisUpdate.getTime() + validityMs);
      const der = generateCrl({
        issuer,
        number: BigInt(number),
        thisUpdate,
        nextUpdate,
        entries: revoked.map((r) => ({ serialHex: r.serialHex, revokedAt: new Date(r.revokedAt), reason: r.reason })),
      });
      const next: CrlState = { caSerialHex: caSerial, number, thisUpdate: thisUpdate.toISOString(), nextUpdate: nextUpdate.toISOString(), der };
      await uow.crls.save(next);
      // Other nodes drop their cached CRL for this CA, so every node serves this one from now on.
      await uow.changes.append({ kind: "crl.published", subject: caSerial, data: { number } });
      return next;
    });
    this.cache.set(caSerial, state);
    return state;
  }

  /** Forget cached CRLs (another process revoked something; the change feed said so). */
  invalidate(caSerial?: string): void {
    if (caSerial) this.cache.delete(caSerial);
    else this.cache.clear();
  }

  /** Another node stored CRL `number` for the CA: a cached older one is dropped (the store has the newer). */
  published(caSerial: string, number: number): void {
    const cached = this.cache.get(caSerial);
    if (cached && cached.number < number) this.cache.delete(caSerial);
  }

  /** Marks a CA's CRL stale so the next `current()` re-signs it. */
  markStale(caSerial: string): void {
    const cached = this.cache.get(caSerial);
    this.cache.set(caSerial, { ...(cached ?? { caSerialHex: caSerial, number: 0, thisUpdate: "", der: Buffer.alloc(0) }), nextUpdate: new Date(0).toISOString() });
  }

  /** Re-signs every CRL that is due (the scheduler calls this). */
  async refreshDue(now = new Date()): Promise<string[]> {
    const refreshed: string[] = [];
    const cas = await this.options.registry.list();
    for (const ca of cas) {
      if (ca.role === "server" || !ca.hasKey || new Date(ca.notAfter) <= now) continue;
      const state = await this.options.store.crls.get(ca.serialHex);
      if (!state || this.due(state, now)) {
        await this.refresh(ca.serialHex, now);
        refreshed.push(ca.serialHex);
      }
    }
    return refreshed;
  }

  private due(state: CrlState, now: Date): boolean {
    const nextUpdate = Date.parse(state.nextUpdate);
    const thisUpdate = Date.parse(state.thisUpdate);
    const margin = Number.isFinite(thisUpdate) ? (nextUpdate - thisUpdate) / 4 : 0;
    return !(now.getTime() < nextUpdate - margin) || state.der.length === 0;
  }

  private async resolve(ca: string | undefined): Promise<string> {
    if (ca === undefined || ca === "" || ca === "issuing") return (await this.options.registry.active("issuing")).serialHex;
    if (ca === "root") return (await this.options.registry.active("root")).serialHex;
    const hex = ca.toLowerCase();
    const known = (await this.options.registry.list()).find((r) => r.serialHex === hex && r.role !== "server");
    if (!known) throw new MoatError("PKI_CA_NOT_FOUND", `no CA with serial ${ca}`);
    return hex;
  }
}
