/**
 * Address ranges banned on the MQTT listeners by a response action (a credential-stuffing /24 or
 * /64). Like the per-address ban list, a range ban sheds guessing only: the authenticator still lets a
 * connection through that can carry a valid credential (see Authenticator.mayProveThroughBan).
 * Addresses and blocks are read by src/lib/ip-address.ts, which folds IPv4-mapped IPv6 peers
 * (`::ffff:203.0.113.7`) to IPv4, so a mapped peer is matched against IPv4 ranges too.
 */
import { MoatError } from "../errors.js";
import { cidrContains, formatCidr, parseCidr, parseIp, type CidrBlock } from "../lib/ip-address.js";

interface RangeBan {
  block: CidrBlock;
  /** Epoch ms; null: until lifted. */
  expiresAt: number | null;
}

export class RangeBans {
  /** By the range as given (the change feed and the store name it that way). */
  private readonly bans = new Map<string, RangeBan>();

  constructor(private readonly now: () => number = Date.now) {}

  ban(range: string, expiresAt: number | null): void {
    const block = parseCidr(range);
    if (!block) throw new MoatError("VALIDATION_FAILED", `${JSON.stringify(String(range).slice(0, 64))} is not an IPv4 or IPv6 CIDR range`);
    this.bans.set(range, { block, expiresAt });
  }

  unban(range: string): void {
    this.bans.delete(range);
  }

  /** The ranges banned now, in canonical form. */
  ranges(): string[] {
    this.expire();
    return [...this.bans.values()].map((ban) => formatCidr(ban.block));
  }

  covers(address: string | null): boolean {
    if (address === null || this.bans.size === 0) return false;
    const ip = parseIp(address);
    if (!ip) return false;
    this.expire();
    for (const ban of this.bans.values()) if (cidrContains(ban.block, ip)) return true;
    return false;
  }

  private expire(): void {
    const now = this.now();
    for (const [range, ban] of this.bans) if (ban.expiresAt !== null && ban.expiresAt <= now) this.bans.delete(range);
  }
}
