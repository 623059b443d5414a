/**
 * The sessions domain's door: the persistent record of live MQTT sessions (who is connected now, from
 * which address, with which credential, on which node, since when) and client-id takeovers, kept from
 * the data plane's `device.connected` / `device.disconnected` events.
 */
export { SessionRecorder, DEFAULT_HEARTBEAT_MS, type SessionEventStream, type SessionRecorderOptions } from "./recorder.js";
export { SessionService, type SessionServiceOptions } from "./service.js";
export type { NewTakeover, SessionQuery, SessionRecord, SessionRepository, TakeoverRecord } from "./ports.js";
