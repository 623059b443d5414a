/**
 * `--ports` syntax: comma-separated items, each a port (`443`), a range (`1-1000`) or the word
 * `iot`, optionally suffixed `/tcp` (the default) or `/udp`: `1-1024,8883,5683/udp,iot`.
 */
import { MoatError } from "../errors.js";

export interface PortSet {
  tcp: number[];
  udp: number[];
}

export const DEFAULT_PORT_SPEC = "1-1000";

/**
 * Ports where IoT devices and their gateways commonly listen: FTP, SSH, Telnet (and the 2323
 * alternative Mirai hunted), HTTP(S) and their 8xxx variants, Modbus/TCP 502, RTSP 554, MQTT 1883
 * and MQTT over TLS 8883, CoAP 5683/udp and CoAPS 5684/udp, UPnP SSDP 1900/udp, TR-069 7547,
 * EtherNet/IP 44818, BACnet/IP 47808/udp, DNP3 20000, OPC UA 4840, and Hikvision/Dahua 8000/37777.
 */
export const IOT_PORTS: Readonly<PortSet> = Object.freeze({
  tcp: [21, 22, 23, 80, 81, 443, 502, 554, 1883, 2323, 4840, 5000, 7547, 8000, 8080, 8081, 8443, 8883, 8888, 9000, 20000, 37777, 44818],
  udp: [1900, 5683, 5684, 47808],
});

const ITEM = /^(?:(iot)|([0-9]{1,5})(?:-([0-9]{1,5}))?)(?:\/(tcp|udp))?$/i;

/** Parses a port specification; malformed items, port 0, ports above 65535 and reversed ranges are refused. */
export function parsePortSpec(spec: string): PortSet {
  const tcp = new Set<number>();
  const udp = new Set<number>();
  const items = spec.split(",").map((item) => item.trim());
  if (spec.trim() === "" || items.some((item) => item === ""))
    throw new MoatError("SCAN_PORTS_INVALID", `Port list '${spec}' has an empty item; write e.g. 1-1000,8883,5683/udp`, { detail: { ports: spec } });
  for (const item of items) {
    const match = ITEM.exec(item);
    if (!match) throw new MoatError("SCAN_PORTS_INVALID", `Port item '${item}' is not a port, a range, 'iot' or one of those with /tcp or /udp`, { detail: { ports: spec, item } });
    const [, iot, fromText, toText, transport] = match;
    if (iot) {
      if (transport === undefined || transport.toLowerCase() === "tcp") IOT_PORTS.tcp.forEach((p) => tcp.add(p));
      if (transport === undefined || transport.toLowerCase() === "udp") IOT_PORTS.udp.forEach((p) => udp.add(p));
      continue;
    }
    const from = Number(fromText);
    const to = toText === undefined ? from : Number(toText);
    if (from < 1 || to > 65535 || from > to)
      throw new MoatError("SCAN_PORTS_INVALID", `Port item '${item}' is outside 1-65535 or its range runs backwards`, { detail: { ports: spec, item } });
    const target = transport?.toLowerCase() === "udp" ? udp : tcp;
    for (let port = from; port <= to; port++) target.add(port);
  }
  const ascending = (a: number, b: number) => a - b;
  return { tcp: [...tcp].sort(ascending), udp: [...udp].sort(ascending) };
}
