// The dependency-direction rule of ARCHITECTURE.md, checked on every import under src/.
// A module may import only the domains listed for it, and only through their door (index.ts, or a
// second door listed in EXTRA_DOORS).
import path from "node:path";

/** domain → the domains it may import (errors and config are open to all). */
export const ALLOWED = {
  crypto: [],
  policy: [],
  network: [],
  keys: ["crypto"],
  audit: ["crypto"],
  pki: ["crypto", "keys", "audit"],
  // Identity owns devices, their credentials and enrollment tokens; it needs no other domain.
  identity: ["crypto", "audit"],
  firmware: ["crypto", "keys", "audit"],
  // The broker reaches identity and PKI through the ports it declares (DeviceDirectory, RevocationSource).
  broker: ["policy", "audit", "crypto"],
  scanner: ["crypto", "audit"],
  compliance: ["audit", "scanner", "posture", "crypto"],
  // Live MQTT sessions, kept from the data plane's events.
  sessions: ["audit"],
  // Detection response reaches identity, PKI and the broker through the ports it declares (src/respond/ports.ts).
  respond: ["audit"],
  // Posture checks read everything through ports; policy lint and audit types are reused directly.
  posture: ["policy", "audit", "crypto"],
  // The Mosquitto data plane: policy compiled to dynamic-security ACLs; the broker's port types (events) only.
  mosquitto: ["policy", "crypto", "broker"],
  // Detection reads identity (groups, firmware inventory) and broker traffic only through ports the composition root wires.
  detect: ["audit"],
  // keys only through its PKCS#11 session (ONLY_THROUGH below), loaded when a device key lives in a token.
  device: ["crypto", "firmware", "policy", "keys"],
  sim: ["device", "crypto", "firmware", "policy"],
  store: ["crypto", "keys", "audit", "pki", "identity", "policy", "broker", "firmware", "network", "scanner", "compliance", "sessions", "posture", "respond", "detect"],
  api: ["crypto", "keys", "audit", "pki", "identity", "policy", "broker", "firmware", "network", "scanner", "compliance", "web", "sessions", "posture", "respond", "detect"],
  web: [],
  cli: ["core", "serve", "mosquitto", "crypto", "keys", "audit", "pki", "identity", "policy", "broker", "firmware", "network", "scanner", "compliance", "device", "sim", "api", "store", "sessions", "posture", "respond", "detect"],
  core: ["crypto", "keys", "audit", "pki", "identity", "policy", "firmware", "network", "scanner", "compliance", "store", "sessions", "posture", "respond", "detect"],
  serve: ["core", "mosquitto", "crypto", "keys", "audit", "pki", "identity", "policy", "broker", "firmware", "network", "scanner", "compliance", "store", "api", "web", "sessions", "posture", "respond", "detect"],
};
/**
 * Open to all: errors, config, the shared ports, the change feed contract, and lib (small helpers with one behaviour each,
 * such as atomic file writes and durations, that every side needs; lib imports only errors.ts).
 */
const OPEN = new Set(["errors", "config", "ports", "lib", "change-feed"]);
/**
 * Doors besides index.ts. firmware/verify.ts is the verification half of firmware (manifests,
 * signature algorithms, key certificates, revocation lists, the secure-boot verifier) without the
 * server-side services, so device code can use it.
 */
const EXTRA_DOORS = { firmware: ["verify.ts"] };
/** Domains that may reach another domain only through one of its extra doors (the device side). */
const ONLY_THROUGH = { device: { firmware: "verify.ts", keys: "pkcs11-token.ts" }, sim: { firmware: "verify.ts" } };
/** Server-side packages that device-side and pure modules must never load. */
const SERVER_PACKAGES = ["better-sqlite3", "pg", "kysely", "fastify", "aedes", "ioredis", "mqemitter-redis", "pino"];
const NO_SERVER_PACKAGES = new Set(["device", "sim", "crypto", "policy", "network", "lib"]);

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
      if (!to || to === from) return;
      if (from === "lib" && to !== "errors") {
        context.report({ node, message: `src/lib holds leaf helpers: it may import only src/errors.ts, not src/${to}` });
        return;
      }
      if (OPEN.has(to)) return;
      const allowed = ALLOWED[from] ?? [];
      if (!allowed.includes(to)) {
        context.report({ node, message: `src/${from} may not import src/${to} (see ARCHITECTURE.md dependency direction)` });
        return;
      }
      if (to === "core" || to === "serve") return;
      const only = ONLY_THROUGH[from]?.[to];
      if (only) {
        if (target !== path.join(srcRoot, to, only))
          context.report({ node, message: `src/${from} may import src/${to} only through src/${to}/${only} (no server-side code on the device side)` });
        return;
      }
      const doors = ["index.ts", ...(EXTRA_DOORS[to] ?? [])].map((name) => path.join(srcRoot, to, name));
      if (!doors.includes(target))
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
