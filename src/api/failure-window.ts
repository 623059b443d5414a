import type { FastifyReply } from "fastify";
import { MoatError } from "../errors.js";

/**
 * Counts failed authentications per address (bad API tokens, refused EST enrollments); past the limit
 * the address backs off until its window ends. One instance per door, so failures at one do not lock
 * an address out of the other.
 */
export class FailureWindow {
  private readonly failures = new Map<string, { count: number; since: number }>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Seconds the address must wait, or 0. */
  blocked(address: string, now = Date.now()): number {
    const entry = this.failures.get(address);
    if (!entry) return 0;
    if (now - entry.since >= this.windowMs) {
      this.failures.delete(address);
      return 0;
    }
    return entry.count >= this.limit ? Math.ceil((entry.since + this.windowMs - now) / 1000) : 0;
  }

  fail(address: string, now = Date.now()): void {
    const entry = this.failures.get(address);
    if (!entry || now - entry.since >= this.windowMs) this.failures.set(address, { count: 1, since: now });
    else entry.count += 1;
    if (this.failures.size > 100_000) this.failures.clear(); // bound memory under a spray of addresses
  }

  /** Refuses with 429 and `Retry-After` while the address is backing off. */
  enforce(address: string, reply: FastifyReply): void {
    const wait = this.blocked(address);
    if (wait === 0) return;
    reply.header("retry-after", String(wait));
    throw new MoatError("RATE_LIMITED", `too many failed authentications from ${address}; retry in ${wait} s`);
  }
}
