import { KNOWN_SERVICES, type PortRange, type Proto } from "./services.js";

/** The parts of a rule, before peers are resolved. */
export interface RuleParts {
  service: string | null;
  proto: Proto;
  ports: PortRange[] | null;
  from: string[] | null;
  to: string[] | null;
}

export type PartsResult = { ok: true; parts: RuleParts } | { ok: false; reason: string };

const NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/;
const SHORT_FORM = /^\s*(?:(all|any)|([A-Za-z][A-Za-z0-9_.-]*)?\s*(?:\(([^)]*)\))?)\s*(?:\bfrom\s+(\S+))?\s*(?:\bto\s+(\S+))?\s*$/;

/** Parses one port (`22`) or range (`8000-8010`), 1-65535. */
export function parsePortItem(text: string): PortRange | string {
  const match = /^\s*(\d{1,5})\s*(?:-\s*(\d{1,5}))?\s*$/.exec(text);
  if (!match) return `"${text.trim()}" is not a port or port range`;
  const from = Number(match[1]);
  const to = match[2] === undefined ? from : Number(match[2]);
  if (from < 1 || from > 65535 || to < 1 || to > 65535) return `port ${from === to ? from : `${from}-${to}`} is outside 1-65535`;
  if (to < from) return `port range ${from}-${to} is reversed`;
  return { from, to };
}

/** Fills proto and ports from the known-service table when the rule names a service without ports. */
export function completeService(service: string | null, ports: PortRange[] | null, proto: Proto | null): PartsResult {
  if (service !== null && !NAME.test(service)) return { ok: false, reason: `"${service}" is not a valid service name` };
  // Own entries only: "constructor" or "__proto__" must be an unknown service, not Object.prototype's.
  const key = service?.toLowerCase();
  const known = key !== undefined && Object.hasOwn(KNOWN_SERVICES, key) ? KNOWN_SERVICES[key] : undefined;
  if (ports === null && service !== null) {
    if (!known) return { ok: false, reason: `unknown service "${service}": give its ports, e.g. ${service} (1234)` };
    return { ok: true, parts: { service, proto: proto ?? known.proto, ports: [...known.ports], from: null, to: null } };
  }
  // Ports without a proto: the named service's protocol, else TCP (the usual case for IoT services).
  const chosen: Proto = proto ?? (known ? known.proto : ports === null ? "any" : "tcp");
  return { ok: true, parts: { service, proto: chosen, ports, from: null, to: null } };
}

/**
 * Parses the seed's short form: `mqtt (1883, 8883)`, `https (443)`, `ssh (22) from admin_network`,
 * `all from admin_network`, `all`, optionally `to NETWORK`. `all` means every protocol and port.
 */
export function parseShortRule(text: string): PartsResult {
  const match = SHORT_FORM.exec(text);
  if (!match) return { ok: false, reason: `cannot read "${text}": expected e.g. "mqtt (1883, 8883)", "ssh (22) from admin_network" or "all"` };
  const [, all, service, portList, from, to] = match;
  if (all === undefined && service === undefined && portList === undefined)
    return { ok: false, reason: `"${text}" names no service, ports or "all"` };
  if (service !== undefined && /^(all|any)$/i.test(service))
    return { ok: false, reason: `"${service}" means every port; it takes no port list` };
  let ports: PortRange[] | null = null;
  if (portList !== undefined) {
    ports = [];
    for (const item of portList.split(",")) {
      const port = parsePortItem(item);
      if (typeof port === "string") return { ok: false, reason: port };
      ports.push(port);
    }
  }
  const result = all !== undefined ? { ok: true as const, parts: { service: null, proto: "any" as Proto, ports: null, from: null, to: null } } : completeService(service ?? null, ports, null);
  if (!result.ok) return result;
  result.parts.from = from === undefined ? null : [from];
  result.parts.to = to === undefined ? null : [to];
  return result;
}
