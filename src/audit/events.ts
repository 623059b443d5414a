/** Security events: typed, persisted append-only in a hash chain, never mixed with operator logs. */
export type Severity = "info" | "low" | "medium" | "high" | "critical";

export interface SecurityEventInput {
  /** Dotted type, domain first: `device.created`, `cert.revoked`, `auth.failed`, `acl.denied`. */
  type: string;
  severity?: Severity;
  /** Who caused it: `operator:<token name>`, `device:<id>`, `cli`, `system`. */
  actor?: string;
  /** What it is about: a device id, a serial, a token name. */
  subject?: string;
  /** Non-secret detail. */
  data?: Record<string, unknown>;
}

export interface SecurityEvent extends Required<Omit<SecurityEventInput, "data">> {
  seq: number;
  time: string;
  data: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** Appends an event inside the caller's transaction. */
export interface EventAppender {
  append(event: SecurityEventInput): Promise<void>;
}

/** Emits an event on its own (its own transaction); used where there is no state change, e.g. `auth.failed`. */
export interface SecurityEventSink {
  emit(event: SecurityEventInput): Promise<void>;
}
