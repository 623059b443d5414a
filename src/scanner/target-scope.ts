/**
 * The scope guard: every target is turned into concrete addresses and checked against the allowed
 * blocks before the scanner opens a single socket. Host names are resolved first and every address
 * they resolve to must be in scope, so a name cannot smuggle an outside address in.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { MoatError } from "../errors.js";
import { cidrAddresses, cidrContains, cidrSize, formatCidr, formatIp, parseCidr, parseIp, type CidrBlock } from "../lib/ip-address.js";

/** The default scope: loopback only. */
export const DEFAULT_ALLOWED_TARGETS: readonly string[] = ["127.0.0.0/8", "::1/128"];

/** Largest block one target may name: a /16 in IPv4, the same 65,536 addresses (/112) in IPv6. */
export const MAX_ADDRESSES_PER_TARGET = 65_536n;

export interface ResolvedTarget {
  /** The target as the operator wrote it. */
  target: string;
  address: string;
  family: 4 | 6;
  /** Set when the address came from a host name (used for TLS name checks). */
  hostname?: string;
}

/** Resolves a host name to its addresses (injected in tests; `dns.lookup` by default). */
export type HostResolver = (hostname: string) => Promise<string[]>;

const defaultResolver: HostResolver = async (hostname) => (await dnsLookup(hostname, { all: true, verbatim: true })).map((r) => r.address);

/** RFC 1123 §2.1 host names: dot-separated labels of letters, digits and inner hyphens. */
const HOST_NAME = /^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** Parses the allowed scope (`--allow` and `scanner.allowedTargets`); any malformed block is an error. */
/**
 * The scope of one run: the configured `scanner.allowedTargets` plus blocks allowed for this run
 * only (the CLI's `--allow`), each once. Every way of starting a scan builds its scope here.
 */
export function runScope(configured: readonly string[], extra: readonly string[] = []): string[] {
  return [...new Set([...configured, ...extra])];
}

export function parseAllowList(blocks: readonly string[]): CidrBlock[] {
  if (blocks.length === 0) throw new MoatError("SCAN_ALLOW_INVALID", "The allowed scope is empty: give at least one CIDR block with --allow");
  return blocks.map((text) => {
    const block = parseCidr(text.trim());
    if (!block) throw new MoatError("SCAN_ALLOW_INVALID", `Allowed scope '${text}' is not an IP address or CIDR block`, { detail: { allow: text } });
    return block;
  });
}

function inScope(allowed: readonly CidrBlock[], family: 4 | 6, value: bigint): boolean {
  return allowed.some((block) => cidrContains(block, { family, value }));
}

function outOfScope(target: string, address: string, allowed: readonly CidrBlock[]): MoatError {
  const scope = allowed.map(formatCidr).join(", ");
  return new MoatError(
    "SCAN_TARGET_OUT_OF_SCOPE",
    `Refusing to scan ${address}${target === address ? "" : ` (from '${target}')`}: it is outside the allowed scope (${scope}). ` +
      `Add a block with --allow or scanner.allowedTargets only for networks you are authorised to test.`,
    { detail: { target, address, allowed: allowed.map(formatCidr) } },
  );
}

/**
 * Turns targets (IP literals, host names, CIDR blocks up to 65,536 addresses) into addresses, and
 * refuses the whole run if any address falls outside `allowed`. Nothing is sent on the network by
 * this function except the host-name lookups themselves (a DNS query, or /etc/hosts).
 */
export async function resolveTargets(
  targets: readonly string[],
  allowed: readonly CidrBlock[],
  resolve: HostResolver = defaultResolver,
): Promise<ResolvedTarget[]> {
  if (targets.length === 0) throw new MoatError("SCAN_TARGET_INVALID", "No target given: name at least one IP address, host name or CIDR block");
  const resolved: ResolvedTarget[] = [];
  const names: string[] = [];
  // Literal addresses and blocks are checked first, synchronously, so a bad literal is refused
  // before any host-name lookup leaves the machine.
  for (const raw of targets) {
    const target = raw.trim();
    if (target.includes("/")) {
      const block = parseCidr(target);
      if (!block) throw new MoatError("SCAN_TARGET_INVALID", `Target '${target}' is not a valid CIDR block`, { detail: { target } });
      if (cidrSize(block) > MAX_ADDRESSES_PER_TARGET)
        throw new MoatError("SCAN_CIDR_TOO_LARGE", `Target '${target}' covers ${cidrSize(block)} addresses; the most one target may cover is ${MAX_ADDRESSES_PER_TARGET} (an IPv4 /16)`, {
          detail: { target },
        });
      // Every address of a block must be in scope: checking the first and last is enough when the
      // block is inside one allowed block; otherwise check each address.
      const whole = allowed.some((a) => a.family === block.family && a.prefix <= block.prefix && cidrContains(a, { family: block.family, value: block.base }));
      for (const address of cidrAddresses(block)) {
        if (!whole && !inScope(allowed, address.family, address.value)) throw outOfScope(target, formatIp(address), allowed);
        resolved.push({ target, address: formatIp(address), family: address.family });
      }
      continue;
    }
    const address = parseIp(target);
    if (address) {
      if (!inScope(allowed, address.family, address.value)) throw outOfScope(target, formatIp(address), allowed);
      resolved.push({ target, address: formatIp(address), family: address.family });
      continue;
    }
    // All-digit names such as `127.1` would be read as addresses by the resolver (inet_aton): refuse them.
    if (!HOST_NAME.test(target) || /^[0-9.]+$/.test(target)) throw new MoatError("SCAN_TARGET_INVALID", `Target '${target}' is not an IP address, host name or CIDR block`, { detail: { target } });
    names.push(target);
  }
  for (const name of names) {
    let addresses: string[];
    try {
      addresses = await resolve(name);
    } catch (error) {
      throw new MoatError("SCAN_TARGET_UNRESOLVED", `Host name '${name}' does not resolve`, { cause: error, detail: { target: name } });
    }
    if (addresses.length === 0) throw new MoatError("SCAN_TARGET_UNRESOLVED", `Host name '${name}' resolves to no address`, { detail: { target: name } });
    for (const text of addresses) {
      const address = parseIp(text);
      if (!address) throw new MoatError("SCAN_TARGET_UNRESOLVED", `Host name '${name}' resolved to '${text}', which is not an IP address`, { detail: { target: name } });
      if (!inScope(allowed, address.family, address.value)) throw outOfScope(name, formatIp(address), allowed);
      resolved.push({ target: name, address: formatIp(address), family: address.family, hostname: name.replace(/\.$/, "") });
    }
  }
  // The same address named twice is scanned once.
  const seen = new Set<string>();
  return resolved.filter((r) => (seen.has(r.address) ? false : (seen.add(r.address), true)));
}
