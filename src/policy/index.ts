/** The policy domain's door: pure access-control decisions (no I/O, no server packages). */
export * from "./model.js";
export {
  MAX_TOPIC_BYTES,
  filterCovers,
  filtersIntersect,
  hasWildcard,
  isValidTopicFilter,
  isValidTopicName,
  topicFilterProblem,
  topicMatches,
  topicNameProblem,
} from "./topic.js";
export { type FilterTemplate, isSafeVariableValue, parseFilterTemplate, substituteFilter } from "./resource-template.js";
export { assertRoleName, formatRule, isOperatorAction, isOperatorActionPattern, parseRuleSpec, validateRole, validateRule } from "./rule.js";
export { type PolicyEngine, type PolicySnapshot, compilePolicy } from "./engine.js";
export { referenceDecide } from "./reference.js";
export {
  type OperatorAuthorizer,
  type OperatorAuthorizerWithExplain,
  type OperatorDecision,
  createOperatorAuthorizer,
} from "./operator.js";
export {
  ADMIN_ROLE,
  AUDITOR_ROLE,
  BUILTIN_ROLES,
  DEFAULT_DEVICE_ROLE,
  DEVICE_ROLE,
  OPERATOR_ROLE,
  QUARANTINE_ROLE_DEFINITION,
  isBuiltinRoleName,
} from "./builtin-roles.js";
export { type LintCode, type LintFinding, type LintOptions, type LintSeverity, lintPolicy } from "./lint.js";
export type {
  AssignmentFilter,
  AssignmentRecord,
  AssignmentRepository,
  PolicyDevice,
  PolicyEventAppender,
  PolicyStore,
  PolicySubjects,
  PolicyUnitOfWork,
  RoleRecord,
  RoleRepository,
} from "./ports.js";
export { type AssignmentTarget, isDeviceRoleIn, type Permission, type PolicyCheck, PolicyService, type RoleView } from "./service.js";
