/**
 * The configuration and capability facts the catalogues name (`{ "config": "<fact>" }`), decided from
 * raw settings and counts the composition root gathers from their owners.
 */
import type { ConfigFact } from "./ports.js";

export interface FactInputs {
  now: number;
  supportPeriodEnd: string | null;
  reportingContact: string | null;
  firmwareKeys: number;
  witnessFile: string | null;
  witnessUrl: string | null;
  /** Time of the newest full posture run, and how often runs are scheduled. */
  lastPostureRunAt: string | null;
  postureIntervalMinutes: number;
  keysProvider: string;
  brokerAuthFailureLimit: number;
  brokerBanSeconds: number;
  brokerMessagesPerSecond: number;
  brokerMaxPayloadBytes: number;
  apiAuthFailureLimit: number;
  apiAuthFailureWindowSeconds: number;
}

export function configFacts(i: FactInputs): Record<string, ConfigFact> {
  const supportEnds = i.supportPeriodEnd ? Date.parse(`${i.supportPeriodEnd}T00:00:00Z`) : NaN;
  const postureAge = i.lastPostureRunAt ? i.now - Date.parse(i.lastPostureRunAt) : Infinity;
  return {
    "support-period": {
      ok: Number.isFinite(supportEnds) && supportEnds > i.now,
      value: i.supportPeriodEnd,
      detail: i.supportPeriodEnd ? (supportEnds > i.now ? `support period published until ${i.supportPeriodEnd} (compliance.supportPeriodEnd)` : `the support period ended on ${i.supportPeriodEnd}`) : "no support period is set (compliance.supportPeriodEnd)",
    },
    "reporting-contact": {
      ok: Boolean(i.reportingContact),
      value: i.reportingContact,
      detail: i.reportingContact ? `security issues are reported to ${i.reportingContact} (compliance.reportingContact)` : "no reporting contact is set (compliance.reportingContact)",
    },
    "firmware-signing": {
      ok: i.firmwareKeys > 0,
      value: i.firmwareKeys,
      detail: i.firmwareKeys > 0 ? `${i.firmwareKeys} firmware signing key(s); manifests are signed and served through TUF` : "no firmware signing key exists (moat firmware keys create)",
    },
    "audit-witness": {
      ok: Boolean(i.witnessFile || i.witnessUrl),
      value: i.witnessUrl ?? i.witnessFile,
      detail: i.witnessFile || i.witnessUrl ? "signed checkpoints of the audit log are copied to a witness" : "no audit witness is configured (audit.witnessFile or audit.witnessUrl)",
    },
    "posture-runs": {
      ok: postureAge <= 2 * i.postureIntervalMinutes * 60_000,
      value: i.lastPostureRunAt,
      detail: i.lastPostureRunAt ? `the newest full posture run is from ${i.lastPostureRunAt}` : "no full posture run is stored",
    },
    "secrets-encrypted-at-rest": { ok: true, value: i.keysProvider, detail: `private keys and secrets are sealed under the KEK (keys.provider=${i.keysProvider})` },
    "certificate-rotation": { ok: true, value: null, detail: "device certificates are renewed by EST re-enrollment and rotated with moat cert rotate" },
    "broker-auth-ban": { ok: true, value: { limit: i.brokerAuthFailureLimit, banSeconds: i.brokerBanSeconds }, detail: `${i.brokerAuthFailureLimit} failed MQTT connects ban the source for ${i.brokerBanSeconds} s` },
    "api-auth-backoff": { ok: true, value: { limit: i.apiAuthFailureLimit, windowSeconds: i.apiAuthFailureWindowSeconds }, detail: `${i.apiAuthFailureLimit} failed API authentications in ${i.apiAuthFailureWindowSeconds} s back the source off` },
    "broker-rate-limits": { ok: true, value: { messagesPerSecond: i.brokerMessagesPerSecond, maxPayloadBytes: i.brokerMaxPayloadBytes }, detail: `per-client publish rate ${i.brokerMessagesPerSecond}/s, payloads up to ${i.brokerMaxPayloadBytes} bytes` },
    "api-authenticated": { ok: true, value: null, detail: "every API route needs an operator token with the route's permission (docs/permissions.md)" },
    "audit-readable": { ok: true, value: null, detail: "the audit log is readable by auditors over the API and CLI, with signed checkpoints and proofs" },
    "input-validation": { ok: true, value: null, detail: "API bodies have bounded schemas; outsider-reachable parsers are fuzzed (npm run fuzz)" },
    "auto-revocation": { ok: true, value: null, detail: "a revoked or suspended device loses its live sessions at once (change feed)" },
  };
}
