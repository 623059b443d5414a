/**
 * Address ranges banned on the MQTT listeners by a response action (a credential-stuffing /24 or
 * /64). Like the per-address ban list, a range ban sheds guessing only: the authenticator still lets a
 * connection through that can carry a valid credential (see Authenticator.mayProveThroughBan).
 * Matching is Node's BlockList, which also matches IPv4-mapped IPv6 peers against IPv4 ranges.
 */
import { BlockList, isIP } from "node:net";
import { MoatError } from "../errors.js";

interface RangeBan {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
  /** Epoch ms; null: until lifted. */
  expiresAt: number | null;
}

/** Reads `a.b.c.d/n` or `x::/n`; a coded error for anything else. */
function parseRange(range: string): RangeBan {
  const slash = range.indexOf("/");
  const address = slash < 0 ? range : range.slice(0, slash);
  const version = isIP(address);
  const max = version === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(max) : range.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : -1;
  if (version === 0 || prefix < 0 || prefix > max) throw new MoatError("VALIDATION_FAILED", `${JSON.stringify(range.slice(0, 64))} is not an IPv4 or IPv6 CIDR range`);
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6", expiresAt: null };
}

export class RangeBans {
  private readonly bans = new Map<string, RangeBan>();
  private list = new BlockList();

  constructor(private readonly now: () => number = Date.now) {}

  ban(range: string, expiresAt: number | null): void {
    this.bans.set(range, { ...parseRange(range), expiresAt });
    this.rebuild();
  }

  unban(range: string): void {
    if (this.bans.delete(range)) this.rebuild();
  }

  /** The ranges banned now. */
  ranges(): string[] {
    this.expire();
    return [...this.bans.keys()];
  }

  covers(address: string | null): boolean {
    if (address === null || this.bans.size === 0) return false;
    const version = isIP(address);
    if (version === 0) return false;
    if (!this.list.check(address, version === 4 ? "ipv4" : "ipv6")) return false;
    // A hit may be a ban that has run out: drop those and ask again.
    return this.expire() ? this.list.check(address, version === 4 ? "ipv4" : "ipv6") : true;
  }

  /** Removes run-out bans; true when any were removed. */
  private expire(): boolean {
    const now = this.now();
    let removed = false;
    for (const [range, ban] of this.bans)
      if (ban.expiresAt !== null && ban.expiresAt <= now) {
        this.bans.delete(range);
        removed = true;
      }
    if (removed) this.rebuild();
    return removed;
  }

  /** BlockList cannot remove a rule, so a change builds a new one. */
  private rebuild(): void {
    const list = new BlockList();
    for (const ban of this.bans.values()) list.addSubnet(ban.address, ban.prefix, ban.family);
    this.list = list;
  }
}
