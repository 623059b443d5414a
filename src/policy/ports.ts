/**
 * The storage the policy service needs, declared here and implemented by src/store. The policy domain
 * stays pure: everything it reads or writes goes through these interfaces.
 */
import type { ChangeWriter, Transactional } from "../ports.js";
import type { Assignment, AssignmentKind, Rule } from "./model.js";

/** A stored role. Built-in roles are stored too (seeded by `moat init`), but their rules come from code. */
export interface RoleRecord {
  name: string;
  description: string;
  rules: Rule[];
  builtin: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface AssignmentRecord extends Assignment {
  createdAt: string;
  createdBy: string;
}

export interface AssignmentFilter {
  role?: string;
  kind?: AssignmentKind;
  target?: string;
}

export interface RoleRepository {
  get(name: string): Promise<RoleRecord | undefined>;
  list(): Promise<RoleRecord[]>;
  insert(role: RoleRecord): Promise<void>;
  /** True when a row was deleted. */
  delete(name: string): Promise<boolean>;
}

export interface AssignmentRepository {
  list(filter?: AssignmentFilter): Promise<AssignmentRecord[]>;
  /** False when the same assignment exists already (nothing written). */
  insert(assignment: AssignmentRecord): Promise<boolean>;
  /** True when a row was deleted. */
  delete(assignment: Assignment): Promise<boolean>;
  /** Removes every assignment of the role and returns what was removed. */
  deleteForRole(role: string): Promise<AssignmentRecord[]>;
}

/** What a decision needs to know about a device from the registry. */
export interface PolicyDevice {
  id: string;
  group: string | null;
  /** The device's role as the registry records it (new devices get `device`). */
  role: string;
  status: string;
  attributes: Record<string, string>;
}

/** Read access to the devices and operator tokens that roles are given to (owned by identity). */
export interface PolicySubjects {
  /** The identity domain's device-id rule, so an assignment to a malformed id is refused as such. */
  isDeviceId(id: string): boolean;
  device(id: string): Promise<PolicyDevice | undefined>;
  /** Every device's id, group and registry role, for lint's holder counts (never for decisions). */
  devices(): Promise<Array<Pick<PolicyDevice, "id" | "group" | "role">>>;
  /** The registry role of an operator token, or undefined when there is no such token. */
  tokenRole(name: string): Promise<string | undefined>;
  /** How many devices and tokens have this role as their registry role. */
  registryRoleUse(role: string): Promise<{ devices: number; tokens: number }>;
}

/** Structurally the audit domain's EventAppender (policy is a leaf and does not import audit). */
export interface PolicyEventAppender {
  append(event: {
    type: string;
    severity?: "info" | "low" | "medium" | "high" | "critical";
    actor?: string;
    subject?: string;
    data?: Record<string, unknown>;
  }): Promise<void>;
}

export interface PolicyUnitOfWork {
  roles: RoleRepository;
  assignments: AssignmentRepository;
  subjects: PolicySubjects;
  events: PolicyEventAppender;
  changes: ChangeWriter;
}

export interface PolicyStore {
  transact: Transactional<PolicyUnitOfWork>;
  roles: RoleRepository;
  assignments: AssignmentRepository;
  subjects: PolicySubjects;
}
