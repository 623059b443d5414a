import { describe, expect, it } from "vitest";
import { BUILTIN_ROLES } from "./builtin-roles.js";
import { createOperatorAuthorizer } from "./operator.js";

const authorizer = createOperatorAuthorizer([
  ...BUILTIN_ROLES,
  {
    name: "cert-clerk",
    rules: [
      { effect: "allow", action: "certs:*", resource: "*" },
      { effect: "deny", action: "certs:revoke", resource: "*" },
    ],
  },
]);

const WRITES = ["devices:write", "tokens:write", "certs:issue", "certs:revoke", "roles:write", "keys:write", "firmware:write", "ota:write", "scans:write"];
const READS = ["devices:read", "tokens:read", "audit:read", "certs:read", "roles:read", "keys:read", "firmware:read", "scans:read", "segments:read"];

describe("built-in operator roles", () => {
  it("admin may do everything", () => {
    for (const action of [...READS, ...WRITES]) expect(authorizer.allows(["admin"], action)).toBe(true);
  });

  it("auditor reads everything and changes nothing", () => {
    for (const action of READS) expect(authorizer.allows(["auditor"], action)).toBe(true);
    for (const action of WRITES) expect(authorizer.allows(["auditor"], action)).toBe(false);
  });

  it("operator runs the fleet but cannot manage roles, tokens or keys", () => {
    for (const action of READS) expect(authorizer.allows(["operator"], action)).toBe(true);
    for (const action of ["devices:write", "certs:issue", "certs:revoke", "firmware:write", "ota:write", "scans:write"])
      expect(authorizer.allows(["operator"], action)).toBe(true);
    for (const action of ["roles:write", "tokens:write", "keys:write"]) expect(authorizer.allows(["operator"], action)).toBe(false);
  });

  it("device roles grant no operator permission", () => {
    expect(authorizer.allows(["device", "quarantine"], "devices:read")).toBe(false);
  });
});

describe("operator decisions", () => {
  it("deny wins over a wildcard allow, and is explained", () => {
    expect(authorizer.allows(["cert-clerk"], "certs:issue")).toBe(true);
    expect(authorizer.decide(["cert-clerk"], "certs:revoke")).toEqual({
      allow: false,
      rule: { role: "cert-clerk", index: 1, effect: "deny", action: "certs:revoke" },
    });
    // The deny applies to the union, even next to admin.
    expect(authorizer.allows(["admin", "cert-clerk"], "certs:revoke")).toBe(false);
  });

  it("the union of roles applies", () => {
    expect(authorizer.allows(["auditor", "cert-clerk"], "certs:issue")).toBe(true);
    expect(authorizer.allows(["auditor", "cert-clerk"], "devices:read")).toBe(true);
  });

  it("no roles, unknown roles and malformed actions are refused", () => {
    expect(authorizer.allows([], "devices:read")).toBe(false);
    expect(authorizer.allows(["ghost"], "devices:read")).toBe(false);
    for (const action of ["*", "devices:*", "*:read", "devices", "", "DEVICES:READ", "devices:read:x"])
      expect(authorizer.allows(["admin"], action)).toBe(false);
  });
});
