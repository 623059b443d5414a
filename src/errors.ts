/**
 * Moat's one table of error codes. Every `MoatError` carries a code from here; the HTTP status is
 * taken from the table so the API, the CLI and the docs agree. `test/errors-doc.test.ts` checks that
 * every code below is documented in docs/errors.md.
 *
 * Each domain has its own section; keep entries sorted by code inside a section.
 */
export const ERROR_CODES = {
  // --- foundation: config, store, keys, general ---
  CONFIG_INVALID: { status: 500, title: "A configuration setting is invalid" },
  DATA_DIR_ALREADY_INITIALIZED: { status: 409, title: "The data directory is already initialised" },
  DATA_DIR_NOT_INITIALIZED: { status: 500, title: "The data directory has not been initialised" },
  STORE_UNREACHABLE: { status: 503, title: "The database cannot be reached" },
  STORE_CONFLICT: { status: 409, title: "A concurrent change conflicted; retry" },
  KEK_MISSING: { status: 500, title: "The key-encryption key is missing" },
  KEK_INVALID: { status: 500, title: "The key-encryption key is malformed" },
  KEK_MISMATCH: { status: 500, title: "The key-encryption key does not match this data directory" },
  ENVELOPE_MALFORMED: { status: 500, title: "An encrypted envelope is malformed" },
  ENVELOPE_DECRYPT_FAILED: { status: 500, title: "An encrypted envelope failed authentication" },
  VALIDATION_FAILED: { status: 400, title: "The request is invalid" },
  BODY_MALFORMED: { status: 400, title: "The request body is not valid JSON" },
  BODY_TOO_LARGE: { status: 413, title: "The request body is too large" },
  NOT_FOUND: { status: 404, title: "No such resource" },
  RATE_LIMITED: { status: 429, title: "Too many requests" },
  INTERNAL: { status: 500, title: "Internal error" },
  // --- identity: devices, operators, tokens ---
  AUTH_TOKEN_MISSING: { status: 401, title: "An API token is required" },
  AUTH_TOKEN_INVALID: { status: 401, title: "The API token is invalid, expired or revoked" },
  AUTH_FORBIDDEN: { status: 403, title: "The token's role does not allow this action" },
  DEVICE_ID_INVALID: { status: 400, title: "The device id is not valid" },
  DEVICE_EXISTS: { status: 409, title: "A device with this id already exists" },
  DEVICE_NOT_FOUND: { status: 404, title: "No such device" },
  DEVICE_STATUS_TRANSITION: { status: 409, title: "That status change is not allowed" },
  TOKEN_EXISTS: { status: 409, title: "A token with this name already exists" },
  TOKEN_NOT_FOUND: { status: 404, title: "No such API token" },
  // --- audit ---
  AUDIT_CHAIN_BROKEN: { status: 500, title: "The audit hash chain does not verify" },
  // --- pki ---
  // --- policy ---
  // --- broker ---
  // --- crypto / data protection ---
  // --- firmware / ota ---
  // --- network segmentation ---
  // --- scanner ---
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface MoatErrorOptions {
  /** Overrides the table's HTTP status (rarely needed). */
  status?: number;
  cause?: unknown;
  /** Structured, non-secret detail for problem+json and `--json` output. */
  detail?: Record<string, unknown>;
}

/** The one error type Moat's domains throw. Callers switch on `code`, never on the message. */
export class MoatError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: MoatErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "MoatError";
    this.code = code;
    this.status = options.status ?? ERROR_CODES[code].status;
    this.detail = options.detail;
  }
}

export function isMoatError(value: unknown, code?: ErrorCode): value is MoatError {
  return value instanceof MoatError && (code === undefined || value.code === code);
}
