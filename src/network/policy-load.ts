import { MoatError } from "../errors.js";
import { hasErrors, type Diagnostic, type Policy, type ResolvedPolicy } from "./policy-model.js";
import { parsePolicyText } from "./policy-parse.js";
import { resolvePolicy } from "./policy-resolve.js";
import { validateResolvedPolicy } from "./policy-validate.js";

/** Everything `moat segment validate` reports about a policy text. */
export interface PolicyAnalysis {
  readonly policy: Policy;
  readonly resolved: ResolvedPolicy;
  /** Sorted by line, errors before warnings on the same line. */
  readonly diagnostics: readonly Diagnostic[];
  readonly valid: boolean;
}

/** Parses, resolves and validates a policy text. Never throws on bad input. */
export function analyzePolicy(text: string): PolicyAnalysis {
  const parsed = parsePolicyText(text);
  const { resolved, diagnostics: resolveDiagnostics } = resolvePolicy(parsed.policy);
  const diagnostics = [...parsed.diagnostics, ...resolveDiagnostics, ...validateResolvedPolicy(resolved)].sort(
    (a, b) => a.line - b.line || (a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1),
  );
  return { policy: parsed.policy, resolved, diagnostics, valid: !hasErrors(diagnostics) };
}

/** Loads a policy for simulation or compilation; refuses one with errors (NETWORK_POLICY_INVALID). */
export function loadPolicy(text: string, source = "policy"): ResolvedPolicy {
  const analysis = analyzePolicy(text);
  if (!analysis.valid) {
    const errors = analysis.diagnostics.filter((d) => d.severity === "error");
    const first = errors[0]!;
    throw new MoatError(
      "NETWORK_POLICY_INVALID",
      `${source}:${first.line}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more error(s); run "moat segment validate")` : ""}`,
      { detail: { errors: errors.map((e) => ({ line: e.line, kind: e.kind, message: e.message })) } },
    );
  }
  return analysis.resolved;
}
