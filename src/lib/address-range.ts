/**
 * An address range as bans name it: `a.b.c.d/n` or `x::/n` (a bare address is a /32 or /128),
 * checked with Node's own address parser so the broker's matcher (net.BlockList) reads it the same way.
 */
import { isIP } from "node:net";
import { MoatError } from "../errors.js";

export interface AddressRange {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

export function parseAddressRange(range: string): AddressRange {
  const text = typeof range === "string" ? range : "";
  const slash = text.indexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  const version = isIP(address);
  const max = version === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1);
  const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : -1;
  if (version === 0 || prefix < 0 || prefix > max) throw new MoatError("VALIDATION_FAILED", `${JSON.stringify(text.slice(0, 64))} is not an IPv4 or IPv6 CIDR range`);
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}
