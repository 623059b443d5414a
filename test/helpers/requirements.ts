import { execFileSync } from "node:child_process";

/**
 * Outside CI a suite whose external tool or service is missing skips with a loud message;
 * under CI=true it fails instead, so CI can never go green by skipping.
 */
export const IN_CI = process.env.CI === "true";

export function hasCommand(command: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** Returns true when the requirement holds. Throws under CI when it does not; warns loudly otherwise. */
export function requirement(name: string, available: boolean, hint: string): boolean {
  if (available) return true;
  const message = `REQUIREMENT MISSING: ${name} — ${hint}`;
  if (IN_CI) throw new Error(`${message} (CI=true: a missing requirement fails the run)`);
  console.warn(`\n!!!!!!!! ${message}. The suite that needs it is SKIPPED. !!!!!!!!\n`);
  return false;
}

export function requireCommand(command: string, debianPackage: string): boolean {
  return requirement(command, hasCommand(command), `install it with: apt-get install -y ${debianPackage}`);
}

export const IS_ROOT = typeof process.getuid === "function" && process.getuid() === 0;
