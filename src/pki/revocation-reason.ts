import { MoatError } from "../errors.js";

/** CRLReason codes of RFC 5280 §5.3.1 that Moat accepts (certificateHold is not: revocation is final). */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  privilegeWithdrawn: 9,
} as const;
export type RevocationReason = keyof typeof REVOCATION_REASONS;

export function parseRevocationReason(value: string | undefined): RevocationReason {
  if (value === undefined) return "unspecified";
  if (Object.hasOwn(REVOCATION_REASONS, value)) return value as RevocationReason;
  throw new MoatError("PKI_REVOCATION_REASON_INVALID", `revocation reason ${JSON.stringify(value)} is not one of ${Object.keys(REVOCATION_REASONS).join(", ")}`);
}
