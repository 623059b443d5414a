import type { Command } from "commander";
import { DEFAULT_ENROLL_TOKEN_TTL_MS, type EnrollmentTokenRecord } from "../../identity/index.js";
import { parseDuration } from "../../lib/duration.js";
import { cliActor, withApp } from "../context.js";
import { printJson, printTable } from "../output.js";

const state = (t: EnrollmentTokenRecord): string => (t.usedAt ? "used" : Date.parse(t.expiresAt) <= Date.now() ? "expired" : "unused");

/** `moat enroll-token …`: one-time EST enrollment tokens. */
export function register(program: Command): void {
  const tokens = program.command("enroll-token").description("one-time EST enrollment tokens (stored hashed, single use, expiring)");

  tokens
    .command("create")
    .description("create a token for one device; it is printed once and never stored")
    .requiredOption("--device <id>", "the device that may enroll with it")
    .option("--ttl <duration>", "lifetime, e.g. 15m, 1h, 7d (max 30d)", "1h")
    .option("--json", "print JSON")
    .addHelpText(
      "after",
      "\nExample:\n  moat enroll-token create --device sensor-1 --ttl 1h\n  curl --cacert chain.pem -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/pkcs10' \\\n       --data-binary @csr.b64 https://moat:8443/.well-known/est/simpleenroll\n",
    )
    .action(async (o: { device: string; ttl: string; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const ttl = o.ttl ? parseDuration(o.ttl, "--ttl") : DEFAULT_ENROLL_TOKEN_TTL_MS;
        const { token, record } = await app.enrollmentTokens.create(o.device, ttl, cliActor());
        if (o.json) printJson({ token, id: record.id, deviceId: record.deviceId, expiresAt: record.expiresAt });
        else {
          process.stdout.write(token + "\n");
          process.stderr.write(`enrollment token for ${record.deviceId}, single use, expires ${record.expiresAt}; it is not shown again\n`);
        }
      }),
    );

  tokens
    .command("list")
    .description("list enrollment tokens (ids and state, never the secrets)")
    .option("--device <id>", "only this device")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat enroll-token list --device sensor-1 --json\n")
    .action(async (o: { device?: string; json?: boolean }, command: Command) =>
      withApp(command, [], async (app) => {
        const list = await app.enrollmentTokens.list(o.device);
        const rows = list.map((t) => ({ id: t.id, deviceId: t.deviceId, state: state(t), createdAt: t.createdAt, expiresAt: t.expiresAt, usedAt: t.usedAt }));
        if (o.json) printJson({ tokens: rows });
        else
          printTable(rows, [
            { header: "id", value: (r) => r.id },
            { header: "device", value: (r) => r.deviceId },
            { header: "state", value: (r) => r.state },
            { header: "expires", value: (r) => r.expiresAt },
          ]);
      }),
    );
}
