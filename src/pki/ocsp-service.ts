import type { IssuerCache } from "./issuer-cache.js";
import { OcspResponder, ocspErrorResponse, type OcspCertStatus } from "./ocsp.js";
import type { PkiStore } from "./ports.js";

/**
 * The OCSP responder over the store: it answers for every issuing CA whose key is held (older ones
 * stay answerable after `moat ca rotate-issuer`) and looks serials up in one query per request.
 */
export class OcspService {
  private responder: Promise<OcspResponder> | null = null;

  constructor(
    private readonly store: PkiStore,
    private readonly issuers: IssuerCache,
    private readonly validitySeconds = 3600,
  ) {}

  /** Answers a DER OCSPRequest. Never throws: bad input gets malformedRequest, store trouble tryLater. */
  async respond(requestDer: Buffer): Promise<Buffer> {
    try {
      return await (await this.current()).respond(requestDer);
    } catch {
      return ocspErrorResponse("internalError");
    }
  }

  invalidate(): void {
    this.responder = null;
  }

  private current(): Promise<OcspResponder> {
    if (!this.responder) {
      this.responder = (async () => {
        const cas = await this.issuers.issuingCas();
        return new OcspResponder({
          cas: cas.map((issuer) => ({ issuer })),
          validitySeconds: this.validitySeconds,
          lookup: async (issuerSerialHex, serials) => {
            const rows = await this.store.certificates.statuses(issuerSerialHex, serials);
            const out = new Map<string, OcspCertStatus>();
            for (const row of rows)
              out.set(
                row.serialHex,
                row.status === "revoked"
                  ? { status: "revoked", revokedAt: new Date(row.revokedAt ?? Date.now()), reason: row.revocationReason ?? "unspecified" }
                  : { status: "good" },
              );
            return out;
          },
        });
      })();
      this.responder.catch(() => {
        this.responder = null;
      });
    }
    return this.responder;
  }
}
