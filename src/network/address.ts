/**
 * IPv4 addresses and CIDR blocks as unsigned 32-bit numbers. The segmentation policy is IPv4 only
 * (the seed's VLANs are IPv4); IPv6 traffic through the compiled ruleset meets the default drop.
 */

/** An IPv4 network: `base` has no host bits set (RFC 4632 §3.1). */
export interface Cidr {
  readonly base: number;
  readonly prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Parses a dotted-quad IPv4 address; returns null when it is not one (no leading zeros, no shorthand). */
export function parseIpv4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!OCTET.test(part)) return null;
    value = value * 256 + Number(part);
  }
  return value >>> 0;
}

export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export type CidrParse = { ok: true; cidr: Cidr } | { ok: false; reason: string };

/** Parses `a.b.c.d/n` or a bare address (a /32). Host bits set are refused: they usually hide a typo. */
export function parseCidr(text: string): CidrParse {
  const slash = text.indexOf("/");
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const address = parseIpv4(addressText);
  if (address === null) {
    if (addressText.includes(":")) return { ok: false, reason: "IPv6 is not supported by the segmentation policy (IPv4 only)" };
    return { ok: false, reason: `"${addressText}" is not an IPv4 address` };
  }
  let prefix = 32;
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^(3[0-2]|[12]?\d)$/.test(prefixText)) return { ok: false, reason: `"/${prefixText}" is not a prefix length 0-32` };
    prefix = Number(prefixText);
  }
  const base = (address & maskOf(prefix)) >>> 0;
  if (base !== address)
    return { ok: false, reason: `host bits are set; the network is ${formatIpv4(base)}/${prefix}` };
  return { ok: true, cidr: { base, prefix } };
}

export function formatCidr(cidr: Cidr): string {
  return cidr.prefix === 32 ? formatIpv4(cidr.base) : `${formatIpv4(cidr.base)}/${cidr.prefix}`;
}

/** The last address of the block. */
export function lastAddress(cidr: Cidr): number {
  return (cidr.base | (~maskOf(cidr.prefix) >>> 0)) >>> 0;
}

export function cidrContainsAddress(cidr: Cidr, address: number): boolean {
  return ((address & maskOf(cidr.prefix)) >>> 0) === cidr.base;
}

/** True when `outer` contains every address of `inner`. */
export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  return outer.prefix <= inner.prefix && cidrContainsAddress(outer, inner.base);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContainsCidr(a, b) || cidrContainsCidr(b, a);
}

/** True when every block of `inner` lies inside one block of `outer`. */
export function cidrListCovers(outer: readonly Cidr[], inner: readonly Cidr[]): boolean {
  return inner.every((i) => outer.some((o) => cidrContainsCidr(o, i)));
}

export function cidrListContainsAddress(list: readonly Cidr[], address: number): boolean {
  return list.some((c) => cidrContainsAddress(c, address));
}

/** Sorted, without blocks contained in others: a canonical form (nft interval sets reject overlaps). */
export function normalizeCidrs(list: readonly Cidr[]): Cidr[] {
  const sorted = [...list].sort((a, b) => a.base - b.base || a.prefix - b.prefix);
  const out: Cidr[] = [];
  for (const cidr of sorted) {
    const previous = out[out.length - 1];
    if (previous && cidrContainsCidr(previous, cidr)) continue;
    out.push(cidr);
  }
  return out;
}
