import { describe, expect, it } from "vitest";
import { certificateStatus } from "./certificate-view.js";

describe("certificate status as shown", () => {
  const now = Date.parse("2026-06-01T00:00:00Z");
  const cert = (status: "active" | "revoked", notAfter: string, supersededBy: string | null = null) => ({ status, notAfter, supersededBy });

  it("revoked wins, then expired, then superseded, else active", () => {
    expect(certificateStatus(cert("revoked", "2020-01-01T00:00:00Z", "ab"), now)).toBe("revoked");
    expect(certificateStatus(cert("active", "2026-06-01T00:00:00Z", "ab"), now)).toBe("expired");
    expect(certificateStatus(cert("active", "2027-01-01T00:00:00Z", "ab"), now)).toBe("superseded");
    expect(certificateStatus(cert("active", "2027-01-01T00:00:00Z"), now)).toBe("active");
  });
});
