export type { Severity, SecurityEventInput, SecurityEvent, EventAppender, SecurityEventSink } from "./events.js";
export { GENESIS_HASH, entryHash, entryBytes, entryLeafHash, ChainVerifier, describeProblem, type ChainEntry, type ChainProblem, type ChainedFields } from "./chain.js";
export { AuditService } from "./service.js";
export type { AuditPort, AuditQuery, AuditKeyRecord, AuditKeyStore, CheckpointRecord, CheckpointStore, SecretSealer } from "./ports.js";
export { verifyLog, type VerifyResult, type VerifyProblem } from "./log-verifier.js";
export { FailureAggregator, FAILURE_SUMMARY_TYPE, DEFAULT_FAILURE_WINDOW_MS, type AuditEventStream, type FailureAggregatorOptions } from "./failure-aggregator.js";
export {
  EMPTY_ROOT,
  leafHash,
  nodeHash,
  nodeKey,
  treeRoot,
  rangeHash,
  inclusionPath,
  consistencyPath,
  verifyInclusion,
  verifyConsistency,
  nodesCompletedBy,
  siblingsOf,
  withStoredNodes,
  MerkleBuilder,
  MissingNodeError,
  type NodeId,
  type StoredNode,
  type NodeLookup,
} from "./merkle.js";
export { formatVerifierKey, parseVerifierKey, noteKeyId, signNote, openNote, type NoteSigner, type NoteVerifierKey, type OpenedNote } from "./signed-note.js";
export { auditOrigin, checkpointText, parseCheckpointText, signCheckpoint, openCheckpoint, type Checkpoint } from "./checkpoint.js";
export { AuditKeys, AUDIT_KEY_ID, auditKeyAad, rawPublicKey, type AuditSigner, type TokenEd25519Keys } from "./audit-key.js";
export { AuditCheckpoints } from "./checkpoints.js";
export { parseInclusionProof, verifyInclusionProof, type InclusionProof } from "./inclusion-proof.js";
export { fileWitness, httpWitness, checkpointFromFile, type CheckpointWitness } from "./witness.js";
export { EVENT_TYPE_FILTER_PATTERN, matchesFilter, type EventStreamFilter } from "./event-filter.js";
export { securitySummary, type SecuritySummary } from "./security-summary.js";
