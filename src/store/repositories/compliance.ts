import type { Kysely } from "kysely";
import type { Attestation, ComplianceRepository, ComplianceStore, StoredReport } from "../../compliance/index.js";
import type { ComplianceAttestationsTable, ComplianceReportsTable, Database } from "../schema.js";
import type { Store } from "../store.js";

function toAttestation(row: Omit<ComplianceAttestationsTable, "id"> & { id: number }, auditSeq: number | null = null): Attestation {
  return {
    id: Number(row.id),
    standard: row.standard,
    control: row.control_id,
    statement: row.statement,
    evidenceUrl: row.evidence_url,
    owner: row.owner,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    createdBy: row.created_by,
    auditSeq,
  };
}

function toReport(row: Omit<ComplianceReportsTable, "report">): StoredReport {
  return { id: row.id, standard: row.standard, createdAt: row.created_at, actor: row.actor, hash: row.hash, summary: JSON.parse(row.summary) as StoredReport["summary"] };
}

const SUMMARY = ["id", "standard", "created_at", "actor", "hash", "summary"] as const;

/** Attestations and signed reports of the compliance domain. */
export class KyselyComplianceRepository implements ComplianceRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insertAttestation(a: Omit<Attestation, "id" | "auditSeq">): Promise<Attestation> {
    const row = await this.db
      .insertInto("compliance_attestations")
      .values({ standard: a.standard, control_id: a.control, statement: a.statement, evidence_url: a.evidenceUrl, owner: a.owner, expires_at: a.expiresAt, created_at: a.createdAt, created_by: a.createdBy })
      .returning("id")
      .executeTakeFirstOrThrow();
    return { ...a, id: Number(row.id), auditSeq: null };
  }

  async attestations(filter: { standard?: string; control?: string; validAt?: string; limit: number }): Promise<Attestation[]> {
    let q = this.db.selectFrom("compliance_attestations").selectAll();
    if (filter.standard) q = q.where("standard", "=", filter.standard);
    if (filter.control) q = q.where("control_id", "=", filter.control);
    if (filter.validAt) q = q.where("expires_at", ">", filter.validAt);
    const rows = await q.orderBy("id", "desc").limit(filter.limit).execute();
    // Each attestation's compliance.attested event, cited as evidence by its sequence number.
    const seqs = new Map<string, number>();
    if (rows.length > 0) {
      const events = await this.db
        .selectFrom("audit_events")
        .select(["seq", "data"])
        .where("type", "=", "compliance.attested")
        .where(
          "subject",
          "in",
          [...new Set(rows.map((r) => `${r.standard}:${r.control_id}`))],
        )
        .execute();
      for (const e of events) {
        const id = (JSON.parse(e.data) as { id?: number }).id;
        if (id !== undefined) seqs.set(String(id), Number(e.seq));
      }
    }
    return rows.map((r) => toAttestation(r, seqs.get(String(r.id)) ?? null));
  }

  async insertReport(report: StoredReport & { report: string }): Promise<void> {
    await this.db
      .insertInto("compliance_reports")
      .values({ id: report.id, standard: report.standard, created_at: report.createdAt, actor: report.actor, hash: report.hash, summary: JSON.stringify(report.summary), report: report.report })
      .execute();
  }

  async latestReport(standard: string): Promise<StoredReport | null> {
    const row = await this.db.selectFrom("compliance_reports").select(SUMMARY).where("standard", "=", standard).orderBy("created_at", "desc").orderBy("id", "desc").limit(1).executeTakeFirst();
    return row ? toReport(row) : null;
  }

  async reports(filter: { standard?: string; limit: number }): Promise<StoredReport[]> {
    let q = this.db.selectFrom("compliance_reports").select(SUMMARY);
    if (filter.standard) q = q.where("standard", "=", filter.standard);
    return (await q.orderBy("created_at", "desc").orderBy("id", "desc").limit(filter.limit).execute()).map(toReport);
  }

  async reportDocument(id: string): Promise<string | null> {
    const row = await this.db.selectFrom("compliance_reports").select("report").where("id", "=", id).executeTakeFirst();
    return row?.report ?? null;
  }
}

/** The compliance domain's storage port over the store. */
export function complianceStore(store: Store): ComplianceStore {
  return {
    transact: (fn) => store.transaction((tx) => fn({ compliance: new KyselyComplianceRepository(tx.db), events: tx.events })),
    compliance: new KyselyComplianceRepository(store.db),
    eventSeq: async (type, subject) => {
      let q = store.db.selectFrom("audit_events").select((eb) => eb.fn.max("seq").as("seq")).where("type", "=", type);
      if (subject !== undefined) q = q.where("subject", "=", subject);
      const row = await q.executeTakeFirst();
      return row?.seq === null || row?.seq === undefined ? null : Number(row.seq);
    },
  };
}
