export type { Severity, SecurityEventInput, SecurityEvent, EventAppender, SecurityEventSink } from "./events.js";
export { GENESIS_HASH, entryHash, entryBytes, entryLeafHash, ChainVerifier, describeProblem, type ChainEntry, type ChainProblem, type ChainedFields } from "./chain.js";
export { AuditService, type AuditPort, type AuditQuery, type VerifyResult } from "./service.js";
export {
  EMPTY_ROOT,
  leafHash,
  nodeHash,
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
