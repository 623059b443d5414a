import type { Kysely } from "kysely";
import type {
  Assignment,
  AssignmentFilter,
  AssignmentKind,
  AssignmentRecord,
  AssignmentRepository,
  PolicyDevice,
  PolicyStore,
  PolicySubjects,
  RoleRecord,
  RoleRepository,
  Rule,
} from "../../policy/index.js";
import { isDeviceId } from "../../identity/index.js";
import { isUniqueViolation } from "../dialect.js";
import type { Database, RoleAssignmentsTable, RolesTable } from "../schema.js";
import type { Store } from "../store.js";

function toRole(row: RolesTable): RoleRecord {
  return {
    name: row.name,
    description: row.description,
    rules: JSON.parse(row.rules) as Rule[],
    builtin: Number(row.builtin) === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toAssignment(row: RoleAssignmentsTable): AssignmentRecord {
  return { role: row.role, kind: row.kind as AssignmentKind, target: row.target, createdAt: row.created_at, createdBy: row.created_by };
}

export class KyselyRoleRepository implements RoleRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async get(name: string): Promise<RoleRecord | undefined> {
    const row = await this.db.selectFrom("roles").selectAll().where("name", "=", name).executeTakeFirst();
    return row ? toRole(row) : undefined;
  }

  async list(): Promise<RoleRecord[]> {
    return (await this.db.selectFrom("roles").selectAll().orderBy("name", "asc").execute()).map(toRole);
  }

  async insert(role: RoleRecord): Promise<void> {
    await this.db
      .insertInto("roles")
      .values({
        name: role.name,
        description: role.description,
        rules: JSON.stringify(role.rules),
        builtin: role.builtin ? 1 : 0,
        created_at: role.createdAt,
        updated_at: role.updatedAt,
      })
      .execute();
  }

  async delete(name: string): Promise<boolean> {
    const result = await this.db.deleteFrom("roles").where("name", "=", name).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

export class KyselyAssignmentRepository implements AssignmentRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async list(filter: AssignmentFilter = {}): Promise<AssignmentRecord[]> {
    let q = this.db.selectFrom("role_assignments").selectAll();
    if (filter.role !== undefined) q = q.where("role", "=", filter.role);
    if (filter.kind !== undefined) q = q.where("kind", "=", filter.kind);
    if (filter.target !== undefined) q = q.where("target", "=", filter.target);
    return (await q.orderBy("role").orderBy("kind").orderBy("target").execute()).map(toAssignment);
  }

  async insert(a: AssignmentRecord): Promise<boolean> {
    const existing = await this.db
      .selectFrom("role_assignments")
      .select("role")
      .where("role", "=", a.role)
      .where("kind", "=", a.kind)
      .where("target", "=", a.target)
      .executeTakeFirst();
    if (existing) return false;
    try {
      await this.db
        .insertInto("role_assignments")
        .values({ role: a.role, kind: a.kind, target: a.target, created_at: a.createdAt, created_by: a.createdBy })
        .execute();
      return true;
    } catch (error) {
      // A concurrent writer inserted the same row first: the assignment exists, which is what was asked.
      if (isUniqueViolation(error)) return false;
      throw error;
    }
  }

  async delete(a: Assignment): Promise<boolean> {
    const result = await this.db
      .deleteFrom("role_assignments")
      .where("role", "=", a.role)
      .where("kind", "=", a.kind)
      .where("target", "=", a.target)
      .executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async deleteForRole(role: string): Promise<AssignmentRecord[]> {
    const rows = await this.list({ role });
    await this.db.deleteFrom("role_assignments").where("role", "=", role).execute();
    return rows;
  }
}

/** Read access to devices and tokens (identity's tables) as the policy domain needs it. */
export class KyselyPolicySubjects implements PolicySubjects {
  constructor(private readonly db: Kysely<Database>) {}

  isDeviceId(id: string): boolean {
    return isDeviceId(id);
  }

  async device(id: string): Promise<PolicyDevice | undefined> {
    const row = await this.db
      .selectFrom("devices")
      .select(["id", "device_group", "role", "status", "attributes"])
      .where("id", "=", id)
      .executeTakeFirst();
    if (!row) return undefined;
    return { id: row.id, group: row.device_group, role: row.role, status: row.status, attributes: JSON.parse(row.attributes) as Record<string, string> };
  }

  async devices(): Promise<Array<Pick<PolicyDevice, "id" | "group" | "role">>> {
    const rows = await this.db.selectFrom("devices").select(["id", "device_group", "role"]).where("status", "!=", "decommissioned").execute();
    return rows.map((r) => ({ id: r.id, group: r.device_group, role: r.role }));
  }

  async tokenRole(name: string): Promise<string | undefined> {
    const row = await this.db.selectFrom("operator_tokens").select("role").where("name", "=", name).executeTakeFirst();
    return row?.role;
  }

  async registryRoleUse(role: string): Promise<{ devices: number; tokens: number }> {
    const devices = await this.db
      .selectFrom("devices")
      .select((eb) => eb.fn.countAll().as("n"))
      .where("role", "=", role)
      .where("status", "!=", "decommissioned")
      .executeTakeFirstOrThrow();
    const tokens = await this.db
      .selectFrom("operator_tokens")
      .select((eb) => eb.fn.countAll().as("n"))
      .where("role", "=", role)
      .where("revoked_at", "is", null)
      .executeTakeFirstOrThrow();
    return { devices: Number(devices.n), tokens: Number(tokens.n) };
  }
}

/** The policy domain's storage port over this store. */
export function policyStore(store: Store): PolicyStore {
  return {
    transact: (fn) =>
      store.transaction((tx) =>
        fn({
          roles: new KyselyRoleRepository(tx.db),
          assignments: new KyselyAssignmentRepository(tx.db),
          subjects: new KyselyPolicySubjects(tx.db),
          events: tx.events,
          changes: tx.changes,
        }),
      ),
    roles: new KyselyRoleRepository(store.db),
    assignments: new KyselyAssignmentRepository(store.db),
    subjects: new KyselyPolicySubjects(store.db),
  };
}
