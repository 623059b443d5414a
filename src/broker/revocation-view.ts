/**
 * The in-memory set of revoked certificate serials a broker node checks at every mTLS CONNECT.
 * Loaded from the store at start; afterwards only the change feed (`cert.revoked`) adds to it, so a
 * revocation takes effect without reloading a CRL file.
 */
import { normalizeSerial } from "./cert-auth.js";
import type { RevocationSource } from "./ports.js";

export class RevocationView {
  private readonly revoked = new Set<string>();

  async load(source: RevocationSource): Promise<void> {
    for (const serial of await source.revokedSerials()) this.revoked.add(normalizeSerial(serial));
  }

  add(serial: string): void {
    this.revoked.add(normalizeSerial(serial));
  }

  isRevoked(serial: string): boolean {
    return this.revoked.has(normalizeSerial(serial));
  }

  get size(): number {
    return this.revoked.size;
  }
}
