import type { Change } from "../ports.js";
import type { CaRegistry } from "./ca-registry.js";
import { CertificateService } from "./certificate-service.js";
import { CrlService } from "./crl-service.js";
import type { ValidityPolicy } from "./device-profile.js";
import { EnrollmentService } from "./enrollment-service.js";
import { IssuerCache } from "./issuer-cache.js";
import { OcspService } from "./ocsp-service.js";
import type { PkiStore } from "./ports.js";

export interface PkiOptions {
  store: PkiStore;
  registry: CaRegistry;
  trustDomain: string;
  publicUrl: string;
  validity: ValidityPolicy;
  crlValidityMs: number;
  rotationGraceMs: number;
  expiryWindowMs: number;
  ocspValiditySeconds?: number;
}

/** The PKI's services, wired once by the composition root. */
export class Pki {
  readonly issuers: IssuerCache;
  readonly crls: CrlService;
  readonly certificates: CertificateService;
  readonly ocsp: OcspService;
  readonly enrollment: EnrollmentService;

  constructor(private readonly options: PkiOptions) {
    this.issuers = new IssuerCache(options.registry, options.trustDomain, options.publicUrl);
    this.crls = new CrlService({ store: options.store, issuers: this.issuers, registry: options.registry, validityMs: options.crlValidityMs });
    this.certificates = new CertificateService({
      store: options.store,
      issuers: this.issuers,
      crls: this.crls,
      trustDomain: options.trustDomain,
      validity: options.validity,
      rotationGraceMs: options.rotationGraceMs,
    });
    this.ocsp = new OcspService(options.store, this.issuers, options.ocspValiditySeconds);
    this.enrollment = new EnrollmentService(options.store, this.certificates);
  }

  /** Follows the change feed: revocations by other processes stale the CRL; a CA change reloads keys. */
  onChange(change: Change): void {
    if (change.kind === "cert.revoked") {
      this.crls.markStale(change.data.issuer);
    } else if (change.kind === "crl.published") {
      this.crls.published(change.subject, change.data.number);
    } else if (change.kind === "ca.changed") {
      this.issuers.invalidate();
      this.ocsp.invalidate();
      this.crls.invalidate();
    }
  }

  /** One scheduler pass: revoke superseded certificates past grace, warn about expiring ones, re-sign due CRLs. */
  async tick(now = new Date()): Promise<{ revoked: number; expiring: number; crls: string[] }> {
    const revoked = await this.certificates.revokeDue(now);
    const expiring = await this.certificates.notifyExpiring(this.options.expiryWindowMs, now);
    const crls = await this.crls.refreshDue(now);
    return { revoked, expiring, crls };
  }

  /** Runs `tick` every `intervalMs` (unref'd); errors go to `onError`. Returns a stop function. */
  startScheduler(intervalMs: number, onError: (error: unknown) => void): () => void {
    let running = false;
    const run = () => {
      if (running) return;
      running = true;
      this.tick()
        .catch(onError)
        .finally(() => {
          running = false;
        });
    };
    const timer = setInterval(run, intervalMs);
    timer.unref();
    run();
    return () => clearInterval(timer);
  }
}
