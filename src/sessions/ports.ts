/**
 * What the live-session record needs from storage. The store implements it (src/store/repositories/sessions.ts);
 * this domain never reads another domain's tables.
 */

/** One live MQTT session as its data plane reported it in `device.connected`. */
export interface SessionRecord {
  /** The connection's own id (`data.session` of its events). */
  sessionId: string;
  deviceId: string;
  /** The MQTT client id (equal to the device id on Moat's embedded broker). */
  clientId: string;
  /** The data-plane node holding the connection. */
  nodeId: string;
  address: string | null;
  listener: string | null;
  /** `mtls`, `jwt-key`, `jwt-secret`, or what another data plane reports. */
  method: string | null;
  /** Client certificate serial (lower-case hex), mTLS only. */
  certSerial: string | null;
  /** Key or secret id that verified a JWT (`key:…`, `secret:…`); never the secret. */
  credentialId: string | null;
  connectedAt: string;
}

/** A connection that replaced a live one with the same client id [MQTT-3.1.4-2]. */
export interface TakeoverRecord {
  id: number;
  at: string;
  clientId: string;
  deviceId: string;
  /** The session that was closed (or, on another node, is still open: then both show as connected). */
  previousSession: string;
  previousAddress: string | null;
  previousNode: string | null;
  session: string;
  address: string | null;
  nodeId: string;
}

export type NewTakeover = Omit<TakeoverRecord, "id">;

export interface SessionQuery {
  deviceId?: string;
  /** Only sessions of nodes whose heartbeat is at or after this time (ISO-8601). */
  aliveSince: string;
  limit: number;
  /** Page after this session id (ordered by session id). */
  after?: string;
}

export interface SessionRepository {
  /** Records an opened session (idempotent on the session id). */
  open(session: SessionRecord): Promise<void>;
  /** Forgets a closed session. */
  close(sessionId: string): Promise<void>;
  /** Live sessions of the same client id on any live node, except `sessionId`. */
  othersWithClientId(clientId: string, sessionId: string, aliveSince: string): Promise<SessionRecord[]>;
  recordTakeover(takeover: NewTakeover): Promise<void>;
  /** Marks these nodes alive now (insert or update). */
  heartbeat(nodeIds: readonly string[], at: string): Promise<void>;
  /** Deletes the sessions and records of nodes whose last heartbeat is before `staleBefore`; returns sessions removed. */
  sweep(staleBefore: string): Promise<number>;
  /** Deletes a node's sessions and its record (clean shutdown). */
  dropNode(nodeId: string): Promise<void>;
  list(query: SessionQuery): Promise<SessionRecord[]>;
  count(aliveSince: string): Promise<number>;
  takeovers(query: { since?: string; deviceId?: string; limit: number }): Promise<TakeoverRecord[]>;
}
