import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { ERROR_CODES, MoatError, type ErrorCode } from "../errors.js";
import { MAX_PAGE_ITEMS } from "../lib/page.js";

/** RFC 9457 problem details; `code` is Moat's stable error code. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  [extension: string]: unknown;
}

export function problemOf(code: ErrorCode, detail: string, status: number = ERROR_CODES[code].status, extra: Record<string, unknown> = {}): Problem {
  return { type: `urn:moat:error:${code}`, title: ERROR_CODES[code].title, status, detail, code, ...extra };
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply.code(problem.status).type("application/problem+json").send(problem);
}

/** A `limit` above a page is refused with the code that says so (the same as the services and the CLI). */
function pageLimitProblem(e: FastifyError): Problem | undefined {
  const tooMany = e.validation?.some((v) => v.keyword === "maximum" && v.instancePath === "/limit");
  return tooMany ? problemOf("PAGE_LIMIT_EXCEEDED", `limit: a page holds 1 to ${MAX_PAGE_ITEMS} items; page through the rest with the next cursor`) : undefined;
}

/** Maps any error to problem+json. Unknown errors are logged and answered without internals. */
export function toProblem(error: unknown, request: FastifyRequest): Problem {
  if (error instanceof MoatError) return problemOf(error.code, error.message, error.status, error.detail ? { detail_fields: error.detail } : {});
  const e = error as FastifyError;
  switch (e.code) {
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return problemOf("BODY_MALFORMED", "the request body is not valid JSON");
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return problemOf("BODY_TOO_LARGE", "the request body is larger than the limit");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return problemOf("VALIDATION_FAILED", "unsupported content type; send application/json", 415);
    case "FST_ERR_VALIDATION":
      return pageLimitProblem(e) ?? problemOf("VALIDATION_FAILED", e.message);
  }
  if (e.validation) return problemOf("VALIDATION_FAILED", e.message);
  if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) return problemOf("VALIDATION_FAILED", e.message, e.statusCode);
  request.log.error({ err: error }, "unhandled error");
  return problemOf("INTERNAL", "internal error; see the server log");
}
