/**
 * The change feed is a contract: every kind has a producer, every consumer waits for a kind something
 * produces, and docs/change-feed.md says who writes and who reads what. Producers and consumers are
 * found in the source (parsed, not type-checked, so this stays fast), which keeps the table honest
 * without a hand-kept list of call sites:
 * - a producer is a call `<…>changes.append({ kind: "<literal>", … })`;
 * - a consumer compares `change.kind` (any name containing "change") with a dotted literal, in a
 *   `switch` case or with `===` / `!==`.
 * The closed union already makes TypeScript reject a consumer of a kind that is not in it; this test
 * adds that every kind in it is written somewhere.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { CHANGE_KINDS, CHANGE_SCHEMAS, parseChange } from "./change-feed.js";

const SRC = join(import.meta.dirname);
const DOCS = join(SRC, "..", "docs", "change-feed.md");

interface Use {
  kind: string;
  domain: string;
  where: string;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") && !entry.name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** The domain a file belongs to: its folder under src/, or the file's own name at the top. */
function domainOf(file: string): string {
  return relative(SRC, file).split(sep)[0]!.replace(/\.ts$/, "");
}

function isKindAccess(node: ts.Node): boolean {
  return ts.isPropertyAccessExpression(node) && node.name.text === "kind" && /change/i.test(node.expression.getText());
}

function scan(): { producers: Use[]; consumers: Use[]; unreadable: string[] } {
  const producers: Use[] = [];
  const consumers: Use[] = [];
  const unreadable: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, "utf8");
    if (!text.includes("kind")) continue;
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
    const domain = domainOf(file);
    const where = (node: ts.Node) => `${relative(SRC, file)}:${source.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
    const visit = (node: ts.Node): void => {
      if (
        ts.isCallExpression(node) &&
        ts.isPropertyAccessExpression(node.expression) &&
        node.expression.name.text === "append" &&
        /changes$/.test(node.expression.expression.getText())
      ) {
        const arg = node.arguments[0];
        const kind = arg && ts.isObjectLiteralExpression(arg) ? arg.properties.find((p) => p.name?.getText() === "kind") : undefined;
        if (kind && ts.isPropertyAssignment(kind) && ts.isStringLiteral(kind.initializer)) producers.push({ kind: kind.initializer.text, domain, where: where(node) });
        else unreadable.push(where(node));
      }
      if (ts.isSwitchStatement(node) && isKindAccess(node.expression)) {
        for (const clause of node.caseBlock.clauses)
          if (ts.isCaseClause(clause) && ts.isStringLiteral(clause.expression) && clause.expression.text.includes("."))
            consumers.push({ kind: clause.expression.text, domain, where: where(clause) });
      }
      if (ts.isBinaryExpression(node) && [ts.SyntaxKind.EqualsEqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsEqualsToken].includes(node.operatorToken.kind)) {
        const [access, literal] = isKindAccess(node.left) ? [node.left, node.right] : [node.right, node.left];
        if (isKindAccess(access) && ts.isStringLiteral(literal) && literal.text.includes(".")) consumers.push({ kind: literal.text, domain, where: where(node) });
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { producers, consumers, unreadable };
}

interface DocRow {
  producers: string[];
  consumers: string[];
  data: string;
}

/** The table in docs/change-feed.md: `| \`kind\` | producers | consumers | \`data\` |`. */
function documented(): Map<string, DocRow> {
  const rows = new Map<string, DocRow>();
  const list = (cell: string) => (cell.trim() === "—" ? [] : cell.split(",").map((d) => d.trim()).sort());
  for (const line of readFileSync(DOCS, "utf8").split("\n")) {
    const match = /^\| `([a-z.]+)` \| ([^|]+) \| ([^|]+) \| `(.+)` \|$/.exec(line);
    if (match) rows.set(match[1]!, { producers: list(match[2]!), consumers: list(match[3]!), data: match[4]! });
  }
  return rows;
}

const uniqueDomains = (uses: Use[], kind: string) => [...new Set(uses.filter((u) => u.kind === kind).map((u) => u.domain))].sort();

describe("the change feed contract", () => {
  const found = scan();

  it("finds the producers and consumers it reads the contract from", () => {
    // Guards the scan itself: if these disappeared, the checks below would pass vacuously.
    expect(found.producers.some((u) => u.kind === "cert.revoked" && u.domain === "pki")).toBe(true);
    expect(found.consumers.some((u) => u.kind === "cert.revoked" && u.domain === "broker")).toBe(true);
  });

  it("producers name their kind as a literal, so the contract can be read from the source", () => {
    expect(found.unreadable).toEqual([]);
  });

  it("every kind produced or consumed is in the closed union", () => {
    const unknown = [...found.producers, ...found.consumers].filter((u) => !(CHANGE_KINDS as readonly string[]).includes(u.kind));
    expect(unknown.map((u) => `${u.kind} at ${u.where}`)).toEqual([]);
  });

  it("no consumer waits for a kind that nothing produces", () => {
    const produced = new Set(found.producers.map((u) => u.kind));
    expect(found.consumers.filter((u) => !produced.has(u.kind)).map((u) => `${u.kind} at ${u.where}`)).toEqual([]);
  });

  it("every kind in the union has a producer", () => {
    expect(CHANGE_KINDS.filter((kind) => uniqueDomains(found.producers, kind).length === 0)).toEqual([]);
  });

  it("docs/change-feed.md lists each kind with its producers, consumers and data as the code has them", () => {
    const docs = documented();
    const actual = Object.fromEntries(
      CHANGE_KINDS.map((kind) => [kind, { producers: uniqueDomains(found.producers, kind), consumers: uniqueDomains(found.consumers, kind), data: CHANGE_SCHEMAS[kind].describe }]),
    );
    expect(Object.fromEntries(docs)).toEqual(actual);
  });
});

describe("parseChange", () => {
  const row = (kind: string, data: unknown) => ({ seq: 7, kind, subject: "d1", data, createdAt: "2026-01-01T00:00:00.000Z" });

  it("accepts a row whose data fits its kind, and narrows the type by kind", () => {
    const change = parseChange(row("device.status", { from: "active", to: "suspended" }));
    expect(change).toEqual({ seq: 7, kind: "device.status", subject: "d1", data: { from: "active", to: "suspended" }, createdAt: "2026-01-01T00:00:00.000Z" });
    if (change?.kind !== "device.status") throw new Error("narrowing failed");
    const to: string = change.data.to;
    expect(to).toBe("suspended");
  });

  it("refuses unknown kinds and data that does not fit (never guesses a field)", () => {
    expect(parseChange(row("device.deleted", {}))).toBeNull();
    expect(parseChange(row("device.status", { status: "suspended" }))).toBeNull();
    expect(parseChange(row("role.assignment", { op: "assigned", kind: "planet", target: "x" }))).toBeNull();
    expect(parseChange(row("firmware.revocations", { version: 1.5 }))).toBeNull();
    expect(parseChange(row("ca.changed", { role: "root", previous: "01" }))).toBeNull();
    expect(parseChange({ ...row("token.revoked", {}), seq: "7" })).toBeNull();
  });

  it("accepts each alternative of a kind with two shapes", () => {
    expect(parseChange(row("ca.changed", { role: "issuing", previous: "0a" }))?.kind).toBe("ca.changed");
    expect(parseChange(row("ca.changed", { role: "root", keyOnline: false }))?.kind).toBe("ca.changed");
  });
});
