/**
 * Address ranges banned on the MQTT listeners by a response action (a credential-stuffing /24 or
 * /64). Like the per-address ban list, a range ban sheds guessing only: the authenticator still lets a
 * connection through that can carry a valid credential (see Authenticator.mayProveThroughBan).
 * Matching is Node's BlockList, which also matches IPv4-mapped IPv6 peers against IPv4 ranges.
 */
import { BlockList, isIP } from "node:net";
import { parseAddressRange, type AddressRange } from "../lib/address-range.js";

interface RangeBan extends AddressRange {
  /** Epoch ms; null: until lifted. */
  expiresAt: number | null;
}

export class RangeBans {
  private readonly bans = new Map<string, RangeBan>();
  private list = new BlockList();

  constructor(private readonly now: () => number = Date.now) {}

  ban(range: string, expiresAt: number | null): void {
    this.bans.set(range, { ...parseAddressRange(range), expiresAt });
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
