/**
 * What the Mosquitto data plane needs from the rest of Moat. The composition root (src/serve.ts, and
 * the CLI for `moat mosquitto status`) wires them to the registry, the policy service and the PKI.
 */
import type { Change } from "../ports.js";
import type { DeviceSubject, Rule } from "../policy/index.js";

/** A device's registry facts, all that its permissions depend on. */
export interface DeviceFacts {
  id: string;
  status: string;
  group: string | null;
  /** The registry role (null where the registry keeps none). */
  role: string | null;
  attributes: Readonly<Record<string, string>>;
}

export interface DeviceSource {
  /** Null for a device that does not exist (any more). */
  get(id: string): Promise<DeviceFacts | null>;
  /** Every device, a page at a time. */
  pages(): AsyncIterable<DeviceFacts[]>;
  /** The broker's rule: may a device in this status hold a session? */
  mayConnect(status: string): boolean;
}

/** The policy service as the data plane uses it. */
export interface DevicePolicy {
  reload(): Promise<void>;
  /** Settles once decisions reflect the row (roles and assignments recompiled). */
  applyChange(change: Change): Promise<void>;
  /** The device rules that apply to the subject (its roles as the engine resolves them). */
  deviceRules(subject: DeviceSubject): { role: string; rule: Rule }[];
}

/** PEM material from the PKI. */
export interface TrustMaterial {
  /** The listener's certificate chain (leaf first) and key. */
  serverTls(): Promise<{ certPem: string; keyPem: string }>;
  /** Trust anchors for client certificates: the root and every issuing CA. */
  caBundle(): Promise<string>;
  /**
   * The current CRL of every issuing CA, PEM, concatenated. `resign` names CAs whose CRL must be signed
   * afresh first (a revocation was just committed and a cached CRL would not list it yet).
   */
  crls(resign?: readonly string[]): Promise<string>;
}

/** The operator log (pino's method shape). */
export interface PlaneLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}
