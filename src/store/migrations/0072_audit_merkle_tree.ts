import type { Kysely } from "kysely";
import { entryLeafHash, MerkleBuilder } from "../../audit/index.js";
import { blobType, type Dialect } from "../dialect.js";
import type { MoatMigration } from "./types.js";

const BATCH = 2000;

/**
 * The audit log as a Merkle tree: `audit_tree` keeps the hash of every perfect subtree (about two
 * rows per entry), `audit_checkpoints` the signed tree heads, `audit_keys` the Ed25519 key that signs
 * them (sealed under the KEK, or a reference into the PKCS#11 token). Entries written before this
 * migration get their subtrees computed here; the key itself needs the KEK, so the installation
 * creates it at its next `moat migrate`, `serve` or `start`.
 */
export const auditMerkleTree: MoatMigration = {
  async up(db: Kysely<any>, dialect: Dialect) {
    await db.schema
      .createTable("audit_tree")
      .addColumn("level", "integer", (c) => c.notNull())
      .addColumn("idx", "bigint", (c) => c.notNull())
      .addColumn("hash", "text", (c) => c.notNull())
      .addPrimaryKeyConstraint("audit_tree_pk", ["level", "idx"])
      .execute();
    await db.schema
      .createTable("audit_checkpoints")
      .addColumn("tree_size", "bigint", (c) => c.primaryKey())
      .addColumn("root_hash", "text", (c) => c.notNull())
      .addColumn("note", "text", (c) => c.notNull())
      .addColumn("created_at", "text", (c) => c.notNull())
      .execute();
    await db.schema
      .createTable("audit_keys")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("public_key", "text", (c) => c.notNull())
      .addColumn("sealed_private_key", blobType(dialect))
      .addColumn("location", "text")
      .addColumn("created_at", "text", (c) => c.notNull())
      .execute();

    const builder = new MerkleBuilder();
    for (let after = 0; ; ) {
      const rows = await db.selectFrom("audit_events").selectAll().where("seq", ">", after).orderBy("seq", "asc").limit(BATCH).execute();
      if (rows.length === 0) break;
      const nodes = [];
      for (const row of rows) {
        const leaf = entryLeafHash({ seq: Number(row.seq), time: row.time, type: row.type, severity: row.severity, actor: row.actor, subject: row.subject, data: JSON.parse(row.data), prevHash: row.prev_hash });
        nodes.push(...builder.push(leaf).map((n) => ({ level: n.level, idx: n.index, hash: n.hash.toString("hex") })));
      }
      for (let i = 0; i < nodes.length; i += 500) await db.insertInto("audit_tree").values(nodes.slice(i, i + 500)).execute();
      after = Number(rows.at(-1)!.seq);
    }
  },
};
