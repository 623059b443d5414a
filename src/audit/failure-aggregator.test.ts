import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { SecurityEventInput } from "./events.js";
import { FAILURE_SUMMARY_TYPE, FailureAggregator } from "./failure-aggregator.js";

/** A stream that records what is appended to the log and what live listeners see. */
function recordingStream() {
  const appended: SecurityEventInput[] = [];
  const live: SecurityEventInput[] = [];
  return {
    appended,
    live,
    emit: async (event: SecurityEventInput) => {
      appended.push(event);
      live.push(event);
    },
    notify: (event: SecurityEventInput) => void live.push(event),
  };
}

const failure = (address: string, reason: string, clientId: string): SecurityEventInput => ({
  type: "auth.failed",
  subject: clientId,
  data: { protocol: "mqtt", reason, address, clientId },
});

describe("failure aggregation", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("keeps the first failure per address and kind in full, then one summary per window with count and distinct client ids", async () => {
    const stream = recordingStream();
    const failures = new FailureAggregator(stream, { windowMs: 10_000 });
    for (let i = 0; i < 50; i++) await failures.emit(failure("192.0.2.1", "bad_password", `id-${i % 7}`));
    await failures.emit(failure("192.0.2.1", "banned", "x"));
    await failures.emit(failure("192.0.2.2", "bad_password", "y"));
    expect(stream.live).toHaveLength(52);
    expect(stream.appended.map((e) => [e.type, e.data?.address, e.data?.reason])).toEqual([
      ["auth.failed", "192.0.2.1", "bad_password"],
      ["auth.failed", "192.0.2.1", "banned"],
      ["auth.failed", "192.0.2.2", "bad_password"],
    ]);
    await vi.advanceTimersByTimeAsync(10_000);
    const summaries = stream.appended.filter((e) => e.type === FAILURE_SUMMARY_TYPE);
    expect(summaries.map((e) => e.data)).toEqual([expect.objectContaining({ address: "192.0.2.1", kind: "mqtt:bad_password", count: 49, distinctClientIds: 7 })]);
    // The flood goes on: still one summary per window, never one row per attempt.
    for (let window = 0; window < 3; window++) {
      for (let i = 0; i < 100; i++) await failures.emit(failure("192.0.2.1", "bad_password", `other-${i}`));
      await vi.advanceTimersByTimeAsync(10_000);
    }
    expect(stream.appended.filter((e) => e.type === FAILURE_SUMMARY_TYPE).map((e) => e.data?.count)).toEqual([49, 100, 100, 100]);
    // A source quiet for a whole window is forgotten: its next failure is written in full again.
    await vi.advanceTimersByTimeAsync(20_000);
    const before = stream.appended.length;
    await failures.emit(failure("192.0.2.1", "bad_password", "late"));
    expect(stream.appended.slice(before).map((e) => e.type)).toEqual(["auth.failed"]);
  });

  it("passes other events through and writes pending summaries on flush", async () => {
    const stream = recordingStream();
    const failures = new FailureAggregator(stream);
    await failures.emit({ type: "cert.revoked", subject: "s" });
    await failures.emit(failure("192.0.2.9", "no_credentials", "a"));
    await failures.emit(failure("192.0.2.9", "no_credentials", "b"));
    await failures.flush();
    expect(stream.appended.map((e) => e.type)).toEqual(["cert.revoked", "auth.failed", FAILURE_SUMMARY_TYPE]);
    expect(stream.appended[2]!.data).toMatchObject({ count: 1, distinctClientIds: 1 });
  });

  it("bounds its memory under a spray of source addresses", async () => {
    const stream = recordingStream();
    const failures = new FailureAggregator(stream, { maxSources: 10 });
    for (let i = 0; i < 1000; i++) await failures.emit(failure(`10.0.${i >> 8}.${i & 255}`, "bad_password", `c${i}`));
    expect(stream.live).toHaveLength(1000);
    // Ten sources in full, then one overflow source for the kind.
    expect(stream.appended).toHaveLength(11);
    await failures.flush();
    expect(stream.appended.at(-1)!.data).toMatchObject({ address: "*", count: 989 });
  });
});
