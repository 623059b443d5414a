import { describe, expect, it } from "vitest";
import { Backoff } from "./backoff.js";
import { renewalTime } from "./renewal.js";

const MIN = 60_000;

describe("renewal schedule", () => {
  const validity = { notBefore: new Date(0), notAfter: new Date(90 * MIN) };

  it("renews at two thirds of the lifetime, within ± 5 % of it", () => {
    expect(renewalTime(validity, { random: () => 0.5 }).getTime()).toBe(60 * MIN);
    expect(renewalTime(validity, { random: () => 0 }).getTime()).toBe(60 * MIN - 4.5 * MIN);
    expect(renewalTime(validity, { random: () => 0.999999 }).getTime()).toBeCloseTo(60 * MIN + 4.5 * MIN, -2);
  });

  it("counts the lifetime from receipt when the CA backdated notBefore (a short certificate is not renewed at once)", () => {
    // A 1-minute certificate backdated by 5 minutes, received at minute 5.
    const short = { notBefore: new Date(0), notAfter: new Date(6 * MIN) };
    expect(renewalTime(short, { random: () => 0.5 }).getTime()).toBe(4 * MIN);
    expect(renewalTime(short, { random: () => 0.5 }, new Date(5 * MIN)).getTime()).toBe(5 * MIN + 40_000);
  });

  it("never schedules past 95 % of the lifetime, whatever the policy", () => {
    expect(renewalTime(validity, { fraction: 1.5, jitter: 0 }).getTime()).toBe(0.95 * 90 * MIN);
    expect(renewalTime(validity, { fraction: -1, jitter: 0 }).getTime()).toBe(0);
  });

  it("an injected schedule replaces the computation", () => {
    expect(renewalTime(validity, { schedule: () => new Date(1234) }).getTime()).toBe(1234);
  });
});

describe("backoff", () => {
  it("draws each wait uniformly below a ceiling that doubles up to the maximum (full jitter)", () => {
    const top = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
    expect([1, 2, 3, 4, 5, 6].map(() => top.next())).toEqual([99, 199, 399, 799, 999, 999]);
    const bottom = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
    expect(bottom.next()).toBe(0);
  });

  it("starts small again after a success", () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
    backoff.next();
    backoff.next();
    backoff.reset();
    expect(backoff.next()).toBe(99);
  });
});
