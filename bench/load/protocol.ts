/** What the load generator's driver (generator.ts) and its worker processes (worker.ts) exchange. */
import type { Target } from "./connection.js";

/** Device credentials, written once to a 0600 file that every worker reads. */
export interface CredentialsFile {
  /** The CA chain the server certificate is checked against. */
  caPem: string;
  /** One private key for every certificate, when key generation is not what a bench measures. */
  sharedKeyPem?: string;
  devices: { id: string; certPem: string; keyPem?: string }[];
}

/** CPU the worker process spent during one operation, next to the operation's wall time. */
export interface CpuReport {
  /** User + system CPU time of the worker process, in ms. */
  cpuMs: number;
  wallMs: number;
}

export interface ConnectRateResult extends CpuReport {
  ok: number;
  failed: number;
  errors: Record<string, number>;
  /** TLS version and cipher of the first connection, to show what was negotiated. */
  negotiated: string | null;
}

export interface HoldResult extends CpuReport {
  open: number;
  failed: number;
  errors: Record<string, number>;
  /** Time from the start of the operation to each connection's CONNACK, in ms. */
  connackMs: number[];
}

export interface FlowResult extends CpuReport {
  /** Messages the publishers wrote (QoS 0) or had acknowledged (QoS 1) inside the measured window. */
  published: number;
  /** Messages the subscribers received inside the measured window. */
  delivered: number;
  /** Length of the measured window, in ms. */
  windowMs: number;
  subscribeRefused: number;
}

export interface TelemetryResult extends CpuReport {
  sent: number;
  acked: number;
  /** PUBACK latency per acknowledged QoS 1 message, in ms. */
  latencyMs: number[];
  /** Held connections that closed during the run. */
  closed: number;
}

export interface EnrollResult extends CpuReport {
  ok: number;
  failed: number;
  errors: Record<string, number>;
  /** Time of each enrollment request, in ms. */
  latencyMs: number[];
  /** What each enrolled device keeps: its key and the certificate the server issued. */
  credentials: { id: string; certPem: string; keyPem: string }[];
}

export interface WorkerOps {
  init: { args: { credentialsFile: string; from: number; to: number }; result: { devices: number } };
  "connect-rate": { args: { target: Target; count: number; concurrency: number }; result: ConnectRateResult };
  hold: { args: { target: Target; concurrency: number; timeoutMs: number; keepaliveSeconds: number; /** Hold only the first `limit` devices of this worker's slice. */ limit?: number }; result: HoldResult };
  release: { args: { port: number }; result: { closed: number } };
  drop: { args: { port: number }; result: { dropped: number } };
  flow: { args: { target: Target; pairs: number; qos: 0 | 1; warmupMs: number; windowMs: number; inflight: number; payloadBytes: number }; result: FlowResult };
  telemetry: { args: { port: number; qos: 0 | 1; intervalMs: number; durationMs: number; payloadBytes: number }; result: TelemetryResult };
  /** EST enrollment of the given devices (keys and CSRs made before the clock starts). */
  enroll: { args: { apiPort: number; caPem: string; devices: { id: string; token: string }[]; concurrency: number }; result: EnrollResult };
}

export type OpName = keyof WorkerOps;

export interface WorkerRequest {
  id: number;
  op: OpName;
  args: unknown;
}

export interface WorkerReply {
  id: number;
  result?: unknown;
  error?: string;
}
