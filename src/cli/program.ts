import { Command } from "commander";
import { register as registerAudit } from "./commands/audit.js";
import { register as registerCa } from "./commands/ca.js";
import { register as registerDevice } from "./commands/device.js";
import { register as registerSystem } from "./commands/system.js";
import { register as registerToken } from "./commands/token.js";
// --- command groups added by domains: import here, register below ---
import { register as registerCert } from "./commands/cert.js";
import { register as registerCrl } from "./commands/crl.js";
import { register as registerEnrollToken } from "./commands/enroll-token.js";
import { register as registerScan } from "./commands/scan.js";
import { register as registerPolicy } from "./commands/policy.js";
import { register as registerRole } from "./commands/role.js";
import { register as registerFirmware } from "./commands/firmware.js";
import { register as registerOta } from "./commands/ota.js";
import { register as registerSegment } from "./commands/segment.js";
import { register as registerKeys } from "./commands/keys.js";
import { register as registerData } from "./commands/data.js";
import { register as registerE2e } from "./commands/e2e.js";

export const VERSION = "0.1.0";

/** The `moat` program: one file per command group under commands/, thin over the services. */
export function buildProgram(): Command {
  const program = new Command("moat")
    .description("Moat: a self-hosted security control plane for IoT fleets")
    .version(VERSION)
    .option("--data-dir <dir>", "data directory (env MOAT_DATA_DIR; default ./moat-data)")
    .option("--database-url <url>", "PostgreSQL URL (env MOAT_DATABASE_URL; default SQLite in the data dir)")
    .option("--log-level <level>", "log level for servers (env MOAT_LOG_LEVEL)")
    .exitOverride()
    .showHelpAfterError()
    .addHelpText("after", "\nExamples:\n  moat init --trust-domain fleet.example.com\n  moat serve\n  moat device add sensor-1 --group boilers\n");
  registerSystem(program);
  registerDevice(program);
  registerToken(program);
  registerAudit(program);
  registerCa(program);
  // --- command groups added by domains ---
  registerCert(program);
  registerEnrollToken(program);
  registerCrl(program);
  registerScan(program);
  registerRole(program);
  registerPolicy(program);
  registerFirmware(program);
  registerOta(program);
  registerSegment(program);
  registerKeys(program);
  registerData(program);
  registerE2e(program);
  return program;
}
