import { MoatError } from "../errors.js";

const SEGMENT = /^[A-Za-z0-9._+@-]+$/;

/**
 * Accepts only a relative path of plain segments (letters, digits, `._+@-`), so a target or image
 * name can never climb out of the directory it is written to (CWE-22): no `..` or `.` segments,
 * no leading `/`, no `\`, no empty segments, no control characters, at most 255 characters.
 */
export function assertSafeTargetPath(path: unknown, what = "target path"): string {
  if (typeof path !== "string" || path.length === 0 || path.length > 255)
    throw new MoatError("FIRMWARE_PATH_INVALID", `${what} must be a non-empty string of at most 255 characters`);
  for (const segment of path.split("/")) {
    if (segment === "." || segment === ".." || !SEGMENT.test(segment))
      throw new MoatError("FIRMWARE_PATH_INVALID", `${what} ${JSON.stringify(path)} is not a safe relative path`);
  }
  return path;
}
