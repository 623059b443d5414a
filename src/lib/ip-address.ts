/**
 * IP addresses and CIDR blocks as big integers, strict parsing only: dotted quads without leading
 * zeros or shorthand (`127.1` is refused, so there is one reading of every target), IPv6 per
 * RFC 4291 §2.2, and IPv4-mapped IPv6 addresses folded to IPv4 (RFC 4291 §2.5.5.2) so a scope
 * check cannot be dodged by writing `::ffff:10.0.0.1`.
 */
import { isIPv6 } from "node:net";

export interface IpAddress {
  family: 4 | 6;
  value: bigint;
}

export interface CidrBlock {
  family: 4 | 6;
  /** Network address (host bits cleared). */
  base: bigint;
  prefix: number;
}

const BITS = { 4: 32, 6: 128 } as const;

/** Parses an IPv4 or IPv6 literal; returns null when `text` is not one. */
export function parseIp(text: string): IpAddress | null {
  const v4 = parseIpv4(text);
  if (v4 !== null) return { family: 4, value: v4 };
  const v6 = parseIpv6(text);
  if (v6 === null) return null;
  if (v6 >> 32n === 0xffffn) return { family: 4, value: v6 & 0xffffffffn };
  return { family: 6, value: v6 };
}

function parseIpv4(text: string): bigint | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseIpv6(text: string): bigint | null {
  // Zone ids (fe80::1%eth0) name an interface, not an address; refuse them.
  if (text.includes("%") || !isIPv6(text)) return null;
  let body = text;
  const lastColon = body.lastIndexOf(":");
  const last = body.slice(lastColon + 1);
  if (last.includes(".")) {
    // Embedded IPv4 (RFC 4291 §2.2 form 3): rewrite the dotted tail as two hex groups.
    const v4 = parseIpv4(last);
    if (v4 === null) return null;
    body = `${body.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = body.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(":") : [];
  const rest = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const groups = halves.length === 2 ? [...head, ...Array<string>(8 - head.length - rest.length).fill("0"), ...rest] : head;
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return null;
  let value = 0n;
  for (const group of groups) value = (value << 16n) | BigInt(parseInt(group, 16));
  return value;
}

/** Formats an address the way Node and the kernel accept it (IPv6 compressed per RFC 5952 §4). */
export function formatIp(address: IpAddress): string {
  if (address.family === 4) {
    const v = address.value;
    return [24n, 16n, 8n, 0n].map((shift) => String((v >> shift) & 0xffn)).join(".");
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((address.value >> BigInt(i * 16)) & 0xffffn));
  // Longest run of two or more zero groups becomes "::" (first one on ties).
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}

/** Parses `a.b.c.d/n` or `x::y/n`; a bare address is a /32 or /128. Returns null when malformed. */
export function parseCidr(text: string): CidrBlock | null {
  const slash = text.indexOf("/");
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const address = parseIp(addressText);
  if (!address) return null;
  // A mapped IPv6 block is read in the IPv4 space, so its prefix shrinks by 96.
  const mapped = address.family === 4 && addressText.includes(":");
  let prefix = BITS[address.family];
  if (slash >= 0) {
    const prefixText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText)) return null;
    prefix = Number(prefixText) - (mapped ? 96 : 0);
    if (prefix < 0 || prefix > BITS[address.family]) return null;
  }
  return { family: address.family, base: address.value & maskOf(address.family, prefix), prefix };
}

function maskOf(family: 4 | 6, prefix: number): bigint {
  const bits = BigInt(BITS[family]);
  const all = (1n << bits) - 1n;
  return (all << (bits - BigInt(prefix))) & all;
}

export function cidrContains(block: CidrBlock, address: IpAddress): boolean {
  return block.family === address.family && (address.value & maskOf(block.family, block.prefix)) === block.base;
}

export function cidrSize(block: CidrBlock): bigint {
  return 1n << BigInt(BITS[block.family] - block.prefix);
}

export function formatCidr(block: CidrBlock): string {
  return `${formatIp({ family: block.family, value: block.base })}/${block.prefix}`;
}

/** Every address of the block, network and broadcast included (as nmap lists them). */
export function* cidrAddresses(block: CidrBlock): Generator<IpAddress> {
  const size = cidrSize(block);
  for (let i = 0n; i < size; i++) yield { family: block.family, value: block.base + i };
}
