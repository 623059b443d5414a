// The dependency-direction rule of ARCHITECTURE.md, checked on every import under src/.
// A module may import only the domains listed for it, and only through their door (index.ts).
import path from "node:path";

/** domain → the domains it may import (errors and config are open to all). */
export const ALLOWED = {
  crypto: [],
  policy: [],
  network: [],
  keys: ["crypto"],
  audit: ["crypto"],
  pki: ["crypto", "keys", "audit"],
  identity: ["pki", "crypto", "keys", "audit", "policy"],
  firmware: ["crypto", "keys", "audit"],
  broker: ["identity", "policy", "pki", "audit", "crypto"],
  scanner: ["crypto", "audit"],
  compliance: ["audit", "scanner"],
  device: ["crypto", "firmware", "policy"],
  sim: ["device", "crypto", "firmware", "policy"],
  store: ["crypto", "keys", "audit", "pki", "identity", "policy", "broker", "firmware", "network", "scanner", "compliance"],
  api: ["crypto", "keys", "audit", "pki", "identity", "policy", "broker", "firmware", "network", "scanner", "compliance", "web"],
  web: [],
  cli: ["core", "serve", "crypto", "keys", "audit", "pki", "identity", "policy", "broker", "firmware", "network", "scanner", "compliance", "device", "sim", "api", "store"],
  core: ["crypto", "keys", "audit", "pki", "identity", "policy", "broker", "firmware", "network", "scanner", "compliance", "store"],
  serve: ["core", "crypto", "keys", "audit", "pki", "identity", "policy", "broker", "firmware", "network", "scanner", "compliance", "store", "api", "web"],
};
const OPEN = new Set(["errors", "config", "ports", "page"]);
/** Server-side packages that device-side and pure modules must never load. */
const SERVER_PACKAGES = ["better-sqlite3", "pg", "kysely", "fastify", "aedes", "ioredis", "mqemitter-redis", "pino"];
const NO_SERVER_PACKAGES = new Set(["device", "sim", "crypto", "policy", "network"]);

function domainOf(file, srcRoot) {
  const rel = path.relative(srcRoot, file);
  if (rel.startsWith("..")) return null;
  const first = rel.split(path.sep)[0];
  return first.replace(/\.ts$/, "");
}

/** @type {import("eslint").Rule.RuleModule} */
export const boundaries = {
  meta: { type: "problem", schema: [], docs: { description: "Enforce Moat's module dependency direction" } },
  create(context) {
    const file = context.filename;
    const srcRoot = path.resolve(context.cwd, "src");
    const from = domainOf(file, srcRoot);
    if (!from || file.endsWith(".test.ts")) return {};
    const check = (node, spec) => {
      if (typeof spec !== "string") return;
      if (!spec.startsWith(".")) {
        if (NO_SERVER_PACKAGES.has(from) && SERVER_PACKAGES.some((p) => spec === p || spec.startsWith(p + "/")))
          context.report({ node, message: `src/${from} must not load the server package '${spec}'` });
        return;
      }
      const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, ".ts");
      const to = domainOf(target, srcRoot);
      if (!to || to === from || OPEN.has(to)) return;
      const allowed = ALLOWED[from] ?? [];
      if (!allowed.includes(to)) {
        context.report({ node, message: `src/${from} may not import src/${to} (see ARCHITECTURE.md dependency direction)` });
        return;
      }
      const door = path.join(srcRoot, to, "index.ts");
      if (to !== "core" && to !== "serve" && target !== door)
        context.report({ node, message: `import src/${to} through its door (src/${to}/index.ts), not '${spec}'` });
    };
    return {
      ImportDeclaration: (node) => check(node, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
      ExportAllDeclaration: (node) => check(node, node.source.value),
      ImportExpression: (node) => node.source.type === "Literal" && check(node, node.source.value),
    };
  },
};
