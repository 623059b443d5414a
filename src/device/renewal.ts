// When a certificate is renewed: at two thirds of its lifetime, give or take a jitter, the way
// long-running ACME and step-ca clients do it, so renewals of a fleet enrolled together spread out and
// a failed attempt still has a third of the lifetime to be retried in.

export interface RenewalPolicy {
  /** Fraction of the lifetime after which to renew (default 2/3). */
  fraction?: number;
  /** Plus or minus this fraction of the lifetime, drawn uniformly (default 0.05). */
  jitter?: number;
  /** Random source in [0, 1). */
  random?: () => number;
  /** Replaces the computation: when to renew a certificate with this validity (tests, simulators). */
  schedule?: (validity: { notBefore: Date; notAfter: Date }) => Date;
}

/**
 * The instant to renew a certificate valid from `notBefore` to `notAfter`, received at `receivedAt`.
 * The lifetime is counted from whichever is later: CAs backdate notBefore against clock skew (Moat by
 * five minutes), which would otherwise eat a short certificate's lifetime and renew it at once.
 */
export function renewalTime(validity: { notBefore: Date; notAfter: Date }, policy: RenewalPolicy = {}, receivedAt?: Date): Date {
  if (policy.schedule) return policy.schedule(validity);
  const start = Math.min(Math.max(validity.notBefore.getTime(), receivedAt?.getTime() ?? -Infinity), validity.notAfter.getTime());
  const lifetime = validity.notAfter.getTime() - start;
  const fraction = policy.fraction ?? 2 / 3;
  const jitter = policy.jitter ?? 0.05;
  const random = policy.random ?? Math.random;
  const offset = lifetime * (fraction + (random() * 2 - 1) * jitter);
  // Never before the start nor at or after the end.
  return new Date(start + Math.round(Math.min(Math.max(offset, 0), lifetime * 0.95)));
}
