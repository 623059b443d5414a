import { readFileSync } from "node:fs";
import { writeFileAtomicSync } from "../../lib/atomic-file.js";
import type { Command } from "commander";
import { cliActor, withApp } from "../context.js";
import { printJson, printTable } from "../output.js";
import { readPrivateKey, reserveKeyOutput } from "./cert.js";

/** How long the root CRL signed when the root goes offline stays valid (it cannot be re-signed until the key is back). */
const OFFLINE_ROOT_CRL_MS = 365 * 86_400_000;

/** `moat ca …`: Moat's certificate authorities. */
export function register(program: Command): void {
  const ca = program.command("ca").description("Moat's certificate authorities");
  ca.command("chain")
    .description("print the CA chain as PEM: issuing CA, then root")
    .option("--out <file>", "write to a file instead of stdout")
    .addHelpText("after", "\nExample:\n  moat ca chain > chain.pem\n")
    .action(async (options: { out?: string }, command: Command) =>
      withApp(command, ["pki"], async (app) => {
        const pem = await app.ca.chainPem();
        if (options.out) writeFileAtomicSync(options.out, pem, { mode: 0o644 });
        else process.stdout.write(pem);
      }),
    );

  ca.command("list")
    .description("list Moat's CA and server certificates")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat ca list --json\n")
    .action(async (options: { json?: boolean }, command: Command) =>
      withApp(command, ["pki"], async (app) => {
        const rows = (await app.ca.list()).map((c) => ({ serial: c.serialHex, role: c.role, keyType: c.keyType, subject: c.subject, notAfter: c.notAfter, active: c.active, keyOnline: c.hasKey, keyLocation: c.keyLocation ?? null }));
        if (options.json) printJson({ certificates: rows });
        else
          printTable(rows, [
            { header: "serial", value: (r) => r.serial },
            { header: "role", value: (r) => r.role },
            { header: "active", value: (r) => r.active },
            { header: "key", value: (r) => r.keyLocation ?? (r.keyOnline ? "online" : "offline") },
            { header: "not after", value: (r) => r.notAfter },
            { header: "subject", value: (r) => r.subject },
          ]);
      }),
    );

  ca.command("export-root")
    .description("write the root CA certificate (the trust anchor devices pin)")
    .option("--out <file>", "write to a file instead of stdout")
    .option("--der", "DER instead of PEM")
    .addHelpText("after", "\nExample:\n  moat ca export-root --out root.pem\n")
    .action(async (options: { out?: string; der?: boolean }, command: Command) =>
      withApp(command, ["pki"], async (app) => {
        const pem = await app.ca.rootPem();
        const body = options.der ? Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64") : Buffer.from(pem);
        if (options.out) writeFileAtomicSync(options.out, body, { mode: 0o644 });
        else process.stdout.write(body);
      }),
    );

  ca.command("offline-root")
    .description("move the root key out of the data dir into a file (signs a 1-year root CRL first); rotate-issuer then needs it back")
    .requiredOption("--key-out <file>", "where to write the root key (mode 0600, must not exist); keep it offline")
    .option("--passphrase-file <file>", "encrypt the key file with this passphrase")
    .addHelpText("after", "\nExample:\n  moat ca offline-root --key-out /media/usb/moat-root.key --passphrase-file pass.txt\n")
    .action(async (options: { keyOut: string; passphraseFile?: string }, command: Command) =>
      withApp(command, ["pki"], async (app) => {
        const output = reserveKeyOutput(options.keyOut, options.passphraseFile);
        try {
          const root = await app.ca.active("root");
          const key = await app.ca.privateKeyDer(root.serialHex);
          // The root CRL cannot be re-signed while the key is away: make the last one long-lived.
          await app.pki.crls.refresh(root.serialHex, new Date(), OFFLINE_ROOT_CRL_MS);
          output.write(key);
        } catch (error) {
          output.abort();
          throw error;
        }
        await app.ca.forgetRootKey(cliActor());
        process.stderr.write(`root key written to ${options.keyOut} and removed from the store; keep it offline\n`);
      }),
    );

  ca.command("online-root")
    .description("bring an offline root key back into the store (sealed)")
    .requiredOption("--key <file>", "the root key file written by offline-root")
    .option("--passphrase-file <file>", "passphrase of an encrypted key file")
    .addHelpText("after", "\nExample:\n  moat ca online-root --key /media/usb/moat-root.key --passphrase-file pass.txt\n")
    .action(async (options: { key: string; passphraseFile?: string }, command: Command) =>
      withApp(command, ["pki"], async (app) => {
        await app.ca.restoreRootKey(readPrivateKey(options.key, options.passphraseFile), cliActor());
        process.stderr.write("root key is back in the store (sealed)\n");
      }),
    );

  ca.command("rotate-issuer")
    .description("create a new issuing CA; certificates of the old one stay verifiable and revocable until they expire")
    .option("--root-key <file>", "the root key file, when the root is offline")
    .option("--passphrase-file <file>", "passphrase of an encrypted root key file")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExamples:\n  moat ca rotate-issuer\n  moat ca rotate-issuer --root-key /media/usb/moat-root.key --passphrase-file pass.txt\n")
    .action(async (options: { rootKey?: string; passphraseFile?: string; json?: boolean }, command: Command) =>
      withApp(command, ["pki"], async (app) => {
        const rootKeyPkcs8Der = options.rootKey ? readPrivateKey(options.rootKey, options.passphraseFile) : undefined;
        const issuing = await app.ca.rotateIssuer({ trustDomain: app.trustDomain, publicUrl: app.publicUrl, ...(rootKeyPkcs8Der ? { rootKeyPkcs8Der } : {}) }, cliActor());
        if (options.json) printJson({ serial: issuing.serialHex, subject: issuing.subject, notAfter: issuing.notAfter });
        else process.stdout.write(`new issuing CA ${issuing.serialHex} (${issuing.subject}), valid until ${issuing.notAfter}\n`);
      }),
    );

  ca.command("trust-manufacturer <file>")
    .description("trust a manufacturer CA for zero-touch EST enrollment with factory (IDevID) certificates")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat ca trust-manufacturer acme-idevid-ca.pem\n")
    .action(async (file: string, options: { json?: boolean }, command: Command) =>
      withApp(command, ["pki"], async (app) => {
        const record = await app.pki.enrollment.trustManufacturer(readFileSync(file, "utf8"), cliActor());
        if (options.json) printJson(record);
        else process.stdout.write(`trusted ${record.subject} (sha256 ${record.fingerprint})\n`);
      }),
    );

  ca.command("manufacturers")
    .description("list trusted manufacturer CAs")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExample:\n  moat ca manufacturers --json\n")
    .action(async (options: { json?: boolean }, command: Command) =>
      withApp(command, ["pki"], async (app) => {
        const list = await app.pki.enrollment.listManufacturers();
        if (options.json) printJson({ manufacturers: list.map(({ certificatePem: _pem, ...rest }) => rest) });
        else
          printTable(list, [
            { header: "fingerprint", value: (r) => r.fingerprint },
            { header: "subject", value: (r) => r.subject },
            { header: "not after", value: (r) => r.notAfter },
          ]);
      }),
    );
}
