export type { Severity, SecurityEventInput, SecurityEvent, EventAppender, SecurityEventSink } from "./events.js";
export { GENESIS_HASH, canonicalJson, entryHash, ChainVerifier, describeProblem, type ChainEntry, type ChainProblem, type ChainedFields } from "./chain.js";
export { AuditService, type AuditPort, type AuditQuery, type VerifyResult } from "./service.js";
