/**
 * One scan run: scope guard → TCP connect scan and UDP probes → service detection on open ports →
 * default-credential attempts → findings. The scope guard runs before any socket exists; the pacer
 * bounds concurrency and rate; the time limit aborts whatever is still running and the result says so.
 */
import { MoatError } from "../errors.js";
import { checkDefaultCredentials } from "./credential-checks.js";
import { findingsForPort } from "./checks.js";
import { SEVERITY_ORDER } from "./finding-rules.js";
import { Pacer } from "./pacer.js";
import { DEFAULT_PORT_SPEC, parsePortSpec } from "./port-spec.js";
import type { ProbeContext } from "./probe-context.js";
import { detectService } from "./service-detect.js";
import { DEFAULT_ALLOWED_TARGETS, parseAllowList, resolveTargets, type HostResolver, type ResolvedTarget } from "./target-scope.js";
import { scanTcpPorts } from "./tcp-connect-scan.js";
import { defaultTransport, type ScanTransport } from "./transport.js";
import type { HostResult, PortResult, ScanProgress, ScanResult, ScanStatus } from "./types.js";
import { probeUdpPort } from "./udp-probe.js";

export interface ScanOptions {
  /** IP addresses, host names and CIDR blocks (at most 65,536 addresses each). */
  targets: readonly string[];
  /** Port specification (see parsePortSpec); default "1-1000". */
  ports?: string;
  /** Allowed scope as CIDR blocks; default loopback only. */
  allow?: readonly string[];
  /** Connections open at once (1-4096, default 256). */
  concurrency?: number;
  /** New connections per second (1-1,000,000, default 5,000). */
  ratePerSecond?: number;
  /** Whole-run limit (1 s - 24 h, default 15 min). */
  timeLimitMs?: number;
  /** Per-port connect timeout (50 ms - 60 s, default 1.5 s). */
  portTimeoutMs?: number;
  /** Wait for answers to probes (100 ms - 60 s, default 3 s). */
  probeTimeoutMs?: number;
  /** Wait for a service to speak first (0 - 30 s, default 1.5 s). */
  bannerWaitMs?: number;
  /** Identify services and check them (default true); false gives open ports only. */
  detectServices?: boolean;
  /** Try default credentials (default true). */
  credentials?: boolean;
  /** Attempts per service, the control attempt included (1-50, default 10). */
  maxCredentialAttempts?: number;
  /** How long an anonymous MQTT subscriber listens (default 1 s). */
  mqttListenMs?: number;
  /** Extra trust anchors (PEM) for certificate checks. */
  trustedCa?: readonly string[];
  onProgress?: (progress: ScanProgress) => void;
  /** Stops the run early (e.g. Ctrl-C); the result is then "aborted". */
  signal?: AbortSignal;
  /** Injected in tests. */
  transport?: ScanTransport;
  resolver?: HostResolver;
}

function bounded(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const result = value ?? fallback;
  if (!Number.isFinite(result) || !Number.isInteger(result) || result < min || result > max)
    throw new MoatError("SCAN_OPTIONS_INVALID", `${name} must be a whole number from ${min} to ${max}; got ${value}`, { detail: { option: name, value } });
  return result;
}

/** Runs a scan; throws MoatError for bad options or out-of-scope targets before anything is sent. */
export async function runScan(options: ScanOptions): Promise<ScanResult> {
  const concurrency = bounded("concurrency", options.concurrency, 256, 1, 4096);
  const ratePerSecond = bounded("rate", options.ratePerSecond, 5_000, 1, 1_000_000);
  const timeLimitMs = bounded("time limit (ms)", options.timeLimitMs, 15 * 60_000, 1_000, 24 * 3_600_000);
  const portTimeoutMs = bounded("port timeout (ms)", options.portTimeoutMs, 1_500, 50, 60_000);
  const probeTimeoutMs = bounded("probe timeout (ms)", options.probeTimeoutMs, 3_000, 100, 60_000);
  const bannerWaitMs = bounded("banner wait (ms)", options.bannerWaitMs, 1_500, 0, 30_000);
  const maxCredentialAttempts = bounded("credential attempts", options.maxCredentialAttempts, 10, 1, 50);
  const mqttListenMs = bounded("MQTT listen (ms)", options.mqttListenMs, 1_000, 0, 60_000);
  const portSpec = options.ports ?? DEFAULT_PORT_SPEC;
  const ports = parsePortSpec(portSpec);
  const allowed = parseAllowList(options.allow ?? DEFAULT_ALLOWED_TARGETS);

  // The scope guard: nothing below this line runs for a target outside `allowed`.
  const hosts = await resolveTargets(options.targets, allowed, options.resolver);

  const startedAt = new Date();
  const controller = new AbortController();
  let status: ScanStatus = "completed";
  const timer = setTimeout(() => {
    status = "timed-out";
    controller.abort();
  }, timeLimitMs);
  const onExternalAbort = () => {
    status = "aborted";
    controller.abort();
  };
  options.signal?.addEventListener("abort", onExternalAbort, { once: true });
  if (options.signal?.aborted) onExternalAbort();

  const transport = options.transport ?? defaultTransport();
  const pacer = new Pacer({ concurrency, ratePerSecond, signal: controller.signal });
  const ctx: ProbeContext = {
    transport,
    pacer,
    signal: controller.signal,
    connectTimeoutMs: Math.max(portTimeoutMs, probeTimeoutMs),
    readTimeoutMs: probeTimeoutMs,
    bannerWaitMs,
    trustedCa: [...(options.trustedCa ?? [])],
  };
  const progress = (phase: ScanProgress["phase"], done: number, total: number) => options.onProgress?.({ phase, done, total });
  const results = new Map<string, HostResult>(hosts.map((h) => [h.address, { address: h.address, ...(h.hostname ? { hostname: h.hostname } : {}), ports: [] }]));

  try {
    // 1. Ports.
    const portTotal = hosts.length * (ports.tcp.length + ports.udp.length);
    let portsDone = 0;
    const open = await scanTcpPorts(hosts, ports.tcp, {
      pacer,
      connector: transport.connector,
      timeoutMs: portTimeoutMs,
      onProgress: (done) => {
        portsDone = done;
        if (done % 256 === 0 || done === hosts.length * ports.tcp.length) progress("ports", done, portTotal);
      },
    });
    for (const [address, list] of open) results.get(address)!.ports.push(...list.map((port): PortResult => ({ port, transport: "tcp", state: "open" })));
    await Promise.all(
      hosts.flatMap((host) =>
        ports.udp.map(async (port) => {
          const answer = await probeUdpPort(ctx, host.address, host.family, port);
          progress("ports", ++portsDone, portTotal);
          if (!answer || answer.state === "closed") return;
          const result: PortResult = { port, transport: "udp", state: answer.state };
          if (answer.protocol === "coap" && answer.coap) {
            const resources = answer.coap.payload.length ? answer.coap.payload.toString("utf8").slice(0, 200) : undefined;
            result.service = { name: "coap", overTls: false, coap: { responseCode: answer.coap.code, ...(resources ? { resources } : {}) } };
          } else if (answer.protocol === "bacnet") {
            result.service = { name: "bacnet", overTls: false };
          }
          results.get(host.address)!.ports.push(result);
        }),
      ),
    );

    // 2. Services, 3. credentials.
    if (options.detectServices !== false) {
      const tcpOpen = [...results.values()].flatMap((host) => host.ports.filter((p) => p.transport === "tcp").map((p) => ({ host, port: p })));
      let detected = 0;
      await Promise.all(
        tcpOpen.map(async ({ host, port }) => {
          port.service = await detectService(ctx, { address: host.address, port: port.port, ...(host.hostname ? { hostname: host.hostname } : {}) }, { mqttListenMs });
          progress("services", ++detected, tcpOpen.length);
        }),
      );
      if (options.credentials !== false) {
        let tried = 0;
        await Promise.all(
          tcpOpen.map(async ({ host, port }) => {
            if (!port.service || controller.signal.aborted) return;
            const check = await checkDefaultCredentials(ctx, { address: host.address, port: port.port, ...(host.hostname ? { hostname: host.hostname } : {}) }, port.service, maxCredentialAttempts);
            if (check) port.service.credentials = check;
            progress("credentials", ++tried, tcpOpen.length);
          }),
        );
      }
    }
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onExternalAbort);
  }

  const now = new Date();
  const hostResults = [...results.values()].map((host) => ({ ...host, ports: host.ports.sort((a, b) => a.port - b.port || a.transport.localeCompare(b.transport)) }));
  const findings = hostResults
    .flatMap((host) => host.ports.flatMap((port) => findingsForPort(host.address, port, now)))
    .sort((a, b) => SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity) || a.address.localeCompare(b.address) || a.port - b.port || a.id.localeCompare(b.id));
  return {
    startedAt: startedAt.toISOString(),
    finishedAt: now.toISOString(),
    status,
    targets: [...options.targets],
    portSpec,
    tcpPortCount: ports.tcp.length,
    udpPortCount: ports.udp.length,
    hosts: hostResults,
    findings,
  };
}

export type { ResolvedTarget };
